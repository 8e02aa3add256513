"""GET /readyz: database and broker checked with the probe's own short timeouts."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import event

from quote_service.api import operations
from tests.conftest import base_config
from tests.support.polling import wait_until
from tests.support.servers import Server, free_port

MakeApp = Callable[[dict[str, Any]], Flask]


def dead_database_url() -> str:
    return f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nothing_here"


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts TCP connections and never says a word: a hung server."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    yield listener.getsockname()[1]
    listener.close()
    # Closing resets the queued connections, so no probe thread is left waiting.
    assert wait_until(
        lambda: not any(t.name.startswith("readiness-") for t in threading.enumerate()),
        timeout=10,
    )


def test_ready_when_database_and_broker_answer(make_app: MakeApp, postgres: Server, redis_server):
    app = make_app(base_config(postgres.url, REDIS_URL=redis_server.url))
    response = app.test_client().get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "checks": {"database": "ok", "broker": "ok"}}


def test_database_down_is_a_503_naming_the_database(make_app: MakeApp, redis_server: Server):
    app = make_app(base_config(dead_database_url(), REDIS_URL=redis_server.url))
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json() == {
        "status": "unavailable",
        "checks": {"database": "down", "broker": "ok"},
    }


def test_redis_down_is_a_503_naming_the_broker(make_app: MakeApp, postgres: Server):
    app = make_app(base_config(postgres.url, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0"))
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json() == {
        "status": "unavailable",
        "checks": {"database": "ok", "broker": "down"},
    }


# The app's own engine would wait 600 s for this hung database; the test's
# timeout is far shorter, so an answer at all shows the probe did not use it.
@pytest.mark.timeout(30)
def test_a_hung_database_does_not_hang_the_probe(make_app: MakeApp, silent_server: int):
    url = f"postgresql+psycopg://postgres@127.0.0.1:{silent_server}/hung"
    app = make_app(base_config(url, DATABASE_CONNECT_TIMEOUT_SECONDS=600))
    assert app.config["SQLALCHEMY_ENGINE_OPTIONS"]["connect_args"]["connect_timeout"] == 600
    attempts: list[dict[str, Any]] = []
    event.listen(
        operations.readiness_engine(app),
        "do_connect",
        lambda dialect, record, cargs, cparams: attempts.append(dict(cparams)),
    )

    response = app.test_client().get("/readyz")

    assert response.status_code == 503
    assert response.get_json()["checks"] == {"database": "down"}
    # The answer waits at most the probe's deadline; its connection attempt
    # uses the probe's timeouts (psycopg's 2 s floor), not the app's.
    assert operations.PROBE_TIMEOUT_SECONDS <= 1
    assert attempts, "the probe tried to connect"
    assert attempts[0]["connect_timeout"] <= 2
    assert "statement_timeout=1000" in attempts[0]["options"]


@pytest.mark.timeout(30)
def test_a_hung_broker_does_not_hang_the_probe(
    make_app: MakeApp, postgres: Server, silent_server: int
):
    app = make_app(base_config(postgres.url, REDIS_URL=f"redis://127.0.0.1:{silent_server}/0"))
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"] == {"database": "ok", "broker": "down"}


def test_a_check_that_outlives_the_deadline_is_down():
    release = threading.Event()
    try:
        states = operations.run_checks(
            {"fast": lambda: None, "stuck": lambda: release.wait(10) and None}, timeout=0.2
        )
    finally:
        release.set()
    assert states == {"fast": "ok", "stuck": "down"}
