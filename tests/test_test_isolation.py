"""The suite's own plumbing: each pytest-xdist worker gets databases of its own."""

from __future__ import annotations

import os

import pytest

from tests.support.servers import ISOLATED_FOR, isolate_xdist_worker

DATABASE = "postgresql://postgres@127.0.0.1:5432/quotes"
REDIS = "redis://127.0.0.1:6379/15"


def configured() -> tuple[str, str]:
    return os.environ["TEST_DATABASE_URL"], os.environ["TEST_REDIS_URL"]


@pytest.fixture
def servers(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv(ISOLATED_FOR, raising=False)
    monkeypatch.setenv("TEST_DATABASE_URL", DATABASE)
    monkeypatch.setenv("TEST_REDIS_URL", REDIS)
    return monkeypatch


def test_a_worker_gets_its_own_postgres_and_redis_databases(
    servers: pytest.MonkeyPatch,
) -> None:
    servers.setenv("PYTEST_XDIST_WORKER", "gw1")
    isolate_xdist_worker()
    assert configured() == (
        "postgresql+psycopg://postgres@127.0.0.1:5432/quotes_gw1",
        "redis://127.0.0.1:6379/14",
    )
    # A process started by that worker (its environment inherited) keeps them.
    isolate_xdist_worker()
    assert configured() == (
        "postgresql+psycopg://postgres@127.0.0.1:5432/quotes_gw1",
        "redis://127.0.0.1:6379/14",
    )


def test_outside_xdist_nothing_changes(servers: pytest.MonkeyPatch) -> None:
    servers.delenv("PYTEST_XDIST_WORKER", raising=False)
    isolate_xdist_worker()
    assert configured() == (DATABASE, REDIS)
