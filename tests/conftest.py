"""Fixtures: real PostgreSQL (and SQLite for the embedded default), one app, clean tables."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from flask_migrate import upgrade
from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

from quote_service import create_app
from quote_service.extensions import db
from quote_service.mail.sender import close_kept_connection
from quote_service.models import Base, activity_tables
from quote_service.services.seed import seed_catalog
from quote_service.services.users import create_user
from tests.support.servers import (
    Server,
    ensure_postgres,
    ensure_redis,
    free_port,
    isolate_xdist_worker,
)
from tests.support.smtp import SmtpSink

# Before any fixture reads TEST_DATABASE_URL / TEST_REDIS_URL.
isolate_xdist_worker()

pytest_plugins = ["tests.routing_fixtures", "tests.browser_fixtures"]

# Tables that requests write; the catalog tables are seeded once per session.
ACTIVITY_TABLES = activity_tables()
# Children before their parents, so that each DELETE meets no row pointing at it.
_ACTIVITY_DELETE_ORDER = [t.name for t in reversed(Base.metadata.sorted_tables)]
_EMPTY_ACTIVITY = "; ".join(
    f"DELETE FROM {name}" for name in _ACTIVITY_DELETE_ORDER if name in ACTIVITY_TABLES
)
# The sequences of those tables' id columns (serial or identity) start at 1 again.
_RESTART_IDS = text(
    "SELECT setval(s.oid::regclass, 1, false) FROM pg_class s"
    " JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = s.oid"
    " AND d.deptype IN ('a', 'i')"
    " JOIN pg_class t ON t.oid = d.refobjid"
    " WHERE s.relkind = 'S' AND t.relname = ANY(:tables)"
)


def empty_activity_tables(connection: Connection | Session) -> None:
    """Empty every table requests write, ids restarting at 1 (PostgreSQL).

    DELETE, not TRUNCATE: a test leaves a few rows, and TRUNCATE gives each of
    the thirteen tables new files, 120-170 ms per test on two CPUs.
    """
    connection.execute(text(_EMPTY_ACTIVITY))
    connection.execute(_RESTART_IDS, {"tables": list(ACTIVITY_TABLES)})


# Each test module's kind, by where it lives (pyproject.toml registers the
# markers). `make test-fast` leaves these out: they hold most of the suite's time.
PROCESS_MODULES = {
    "test_clinic_quotes_pipeline.py",
    "test_gunicorn_serving.py",
    "test_worker_pipeline.py",
}


def kind_of(path: Path) -> str | None:
    if "faults" in path.parts:
        return "faults"
    if "browser" in path.stem:
        return "browser"
    if path.stem.startswith("test_fuzz"):
        return "fuzz"
    if path.stem.startswith("test_bench"):
        return "bench"
    if path.name in PROCESS_MODULES:
        return "processes"
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        kind = kind_of(item.path)
        if kind is not None:
            item.add_marker(getattr(pytest.mark, kind))


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = ensure_postgres(tmp_path_factory.mktemp("postgres"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = ensure_redis(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def smtp_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink(free_port())
    sink.start()
    yield sink
    close_kept_connection()  # the one this process's sends kept open to it
    sink.stop()


@pytest.fixture
def smtp(smtp_sink: SmtpSink) -> Iterator[SmtpSink]:
    """The session's SMTP server, emptied before and after the test."""
    smtp_sink.reset()
    yield smtp_sink
    smtp_sink.reset()


def base_config(database_url: str, **overrides: Any) -> dict[str, Any]:
    return {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "REDIS_URL": "",
        "COORDINATORS_EMAIL": "coordinators@quote-service.example",
        # Short retries and leases keep fault tests quick; they are bounded anyway.
        "NOTIFICATION_RETRY_BASE_SECONDS": 0.2,
        "NOTIFICATION_RETRY_MAX_SECONDS": 1.0,
        "OUTBOX_LEASE_SECONDS": 5,
        "OUTBOX_RELAY_SECONDS": 0.1,
        # Tests post many requests from one address; test_rate_limits sets its own.
        "RATE_LIMIT_INTAKE": "100000/minute",
        "RATE_LIMIT_INTAKE_ATTEMPTS": "100000/minute",
        "RATE_LIMIT_PATIENT_LINK": "100000/minute",
        "ACKNOWLEDGEMENTS_PER_RECIPIENT_PER_DAY": 1000,
        # One invited clinic per request unless a test is about fan-out (it sets more).
        "QUOTE_FANOUT": 1,
        **overrides,
    }


def smtp_config(sink: SmtpSink) -> dict[str, Any]:
    return {"SMTP_HOST": sink.host, "SMTP_PORT": sink.port, "SMTP_TIMEOUT_SECONDS": 5}


def reset_database(app: Flask) -> None:
    """Drop everything, then build the schema the way production does: migrations."""
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            with db.engine.begin() as connection:
                connection.execute(text("DROP SCHEMA public CASCADE"))
                connection.execute(text("CREATE SCHEMA public"))
        upgrade()
        seed_catalog()


@pytest.fixture(scope="session")
def app(postgres: Server, smtp_sink: SmtpSink) -> Iterator[Flask]:
    app = create_app(base_config(postgres.url, **smtp_config(smtp_sink)))
    reset_database(app)
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture(autouse=True)
def clean_activity_tables(request: pytest.FixtureRequest) -> Iterator[None]:
    """Empty the tables requests write after each test that used the database."""
    yield
    if "app" not in request.fixturenames:
        return
    app: Flask = request.getfixturevalue("app")
    with app.app_context():
        db.session.remove()
        with db.engine.begin() as connection:
            empty_activity_tables(connection)


@pytest.fixture
def make_app() -> Iterator[Callable[[dict[str, Any]], Flask]]:
    """Build extra apps (other settings); their connection pools are closed afterwards."""
    apps: list[Flask] = []

    def make(config: dict[str, Any]) -> Flask:
        app = create_app(config)
        apps.append(app)
        return app

    yield make
    for app in apps:
        with app.app_context():
            db.engine.dispose()


@pytest.fixture
def app_context(app: Flask) -> Iterator[None]:
    with app.app_context():
        yield
        db.session.remove()


@dataclass
class Caller:
    """A user of the coordinators' API, with the headers that authenticate it."""

    id: int
    email: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def make_user(app: Flask, email: str, role: str) -> Caller:
    with app.app_context():
        user, token = create_user(email, role)
        return Caller(user.id, user.email, token)


@pytest.fixture
def coordinator(app: Flask) -> Caller:
    return make_user(app, "coordinator@quote-service.example", "coordinator")


@pytest.fixture
def other_coordinator(app: Flask) -> Caller:
    return make_user(app, "second.coordinator@quote-service.example", "coordinator")


@pytest.fixture
def admin(app: Flask) -> Caller:
    return make_user(app, "admin@quote-service.example", "admin")


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


@pytest.fixture
def sqlite_app(tmp_path: Path) -> Iterator[Flask]:
    """The embedded default: an SQLite file, migrated and seeded like `make run` does."""
    app = create_app(
        base_config(
            f"sqlite:///{tmp_path / 'quote_service.sqlite3'}", MAIL_DIR=str(tmp_path / "mail")
        )
    )
    reset_database(app)
    yield app
    with app.app_context():
        db.engine.dispose()
