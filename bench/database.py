"""The bench database: created fresh for each run, migrated and seeded the production way."""

from __future__ import annotations

import psycopg
from flask_migrate import upgrade
from psycopg import sql
from sqlalchemy.engine import make_url

from quote_service import create_app
from quote_service.extensions import db
from quote_service.models import activity_tables
from quote_service.services.seed import seed_catalog
from quote_service.services.users import create_user

# Tables requests write; emptied between scenarios so each starts alike. The
# bench's coordinator (user_account) stays: its token signs the queue's calls.
ACTIVITY_TABLES = tuple(t for t in activity_tables() if t != "user_account")
FLOOR_TABLE = "bench_floor_request"
# Every seeded sample clinic takes 8-25 requests a day; a pipeline run routes
# thousands in minutes. Without this most would be `unroutable` by capacity.
BENCH_DAILY_CAPACITY = 10_000_000
COORDINATOR_EMAIL = "bench@quote-service.example"


def libpq_url(url: str) -> str:
    """A SQLAlchemy URL (`postgresql+psycopg://`) as libpq wants it (`postgresql://`)."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def database_name(url: str) -> str:
    name = make_url(url).database
    if not name:
        raise ValueError(f"no database name in {url!r}")
    return name


def _maintenance_url(url: str) -> str:
    return libpq_url(make_url(url).set(database="postgres").render_as_string(hide_password=False))


def connect(url: str, autocommit: bool = False) -> psycopg.Connection:
    return psycopg.connect(libpq_url(url), autocommit=autocommit, connect_timeout=10)


def recreate(url: str) -> None:
    """Create the bench database if it is missing, and empty it.

    The schema is dropped, not the database: DROP DATABASE forces a checkpoint
    of the whole server, which takes long and slows everyone else's work too.
    """
    name = database_name(url)
    with psycopg.connect(_maintenance_url(url), autocommit=True, connect_timeout=10) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    empty(url)


def empty(url: str) -> None:
    """Drop every table of the bench database (what a run leaves behind is gigabytes)."""
    with connect(url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS public CASCADE")
        conn.execute("CREATE SCHEMA public")


def prepare(url: str, encryption_key: str) -> str:
    """Migrate and seed the (empty) database; return a coordinator's API token.

    The same calls as `flask db upgrade`, `flask seed` and `flask users create`,
    made in this process: three interpreters fewer to start.
    """
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": url,
            "DATA_ENCRYPTION_KEYS": [encryption_key],
            "REDIS_URL": "",
            "LOG_LEVEL": "WARNING",
        }
    )
    with app.app_context():
        try:
            upgrade()
            seed_catalog()
            _, token = create_user(COORDINATOR_EMAIL, "coordinator")
        finally:
            db.session.remove()
            db.engine.dispose()
    with connect(url) as conn:
        conn.execute("UPDATE provider SET daily_capacity = %s", (BENCH_DAILY_CAPACITY,))
        conn.execute(
            sql.SQL(
                "CREATE TABLE {} (id bigserial PRIMARY KEY, full_name text NOT NULL,"
                " email text NOT NULL, country_of_residence text NOT NULL,"
                " condition text NOT NULL, destination text NOT NULL, payload jsonb NOT NULL,"
                " created_at timestamptz NOT NULL DEFAULT now())"
            ).format(sql.Identifier(FLOOR_TABLE))
        )
    return token


def coordinator_id(url: str) -> int:
    with connect(url) as conn:
        row = conn.execute(
            "SELECT id FROM user_account WHERE email = %s", (COORDINATOR_EMAIL,)
        ).fetchone()
    if row is None:
        raise RuntimeError("the bench coordinator is missing")
    return int(row[0])


def empty_activity(url: str) -> None:
    """Empty what requests wrote (the project's and the floor's); the catalog stays."""
    tables = sql.SQL(", ").join(sql.Identifier(t) for t in (*ACTIVITY_TABLES, FLOOR_TABLE))
    with connect(url) as conn:
        conn.execute(sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(tables))


def vacuum_analyze(url: str) -> None:
    """Fresh statistics and visibility map, as autovacuum would leave a settled table."""
    with connect(url, autocommit=True) as conn:
        for table in ACTIVITY_TABLES:
            conn.execute(sql.SQL("VACUUM ANALYZE {}").format(sql.Identifier(table)))


def server_version(url: str) -> str:
    with connect(url) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "unknown"
