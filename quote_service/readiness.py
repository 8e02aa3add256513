"""Readiness: can this process serve? Each dependency probed with short, bounded waits.

`GET /readyz` answers with it, and `/metrics` exports it, so an alert sees the
same checks a load balancer does.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from contextvars import copy_context

import redis
from flask import Flask
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.pool import NullPool

from quote_service.config import engine_options

log = logging.getLogger(__name__)

# A readiness probe must answer quickly even when a dependency hangs: every
# check runs in its own thread and one that has not answered by then is down.
PROBE_TIMEOUT_SECONDS = 1.0
# psycopg waits at least 2 s for a connection whatever is asked; the deadline
# above bounds the answer, this bounds how long a check's thread lives on.
PROBE_CONNECT_TIMEOUT_SECONDS = 2
PROBE_STATEMENT_TIMEOUT_MS = 1000


def check(app: Flask) -> dict[str, str]:
    """`{"database": "ok"|"down", "broker": ...}`; the broker only when there is one."""
    engine = readiness_engine(app)
    checks: dict[str, Callable[[], None]] = {"database": lambda: _ping_database(engine)}
    redis_url = app.config["REDIS_URL"]
    if redis_url:
        checks["broker"] = lambda: _ping_redis(redis_url)
    return run_checks(checks, PROBE_TIMEOUT_SECONDS)


def readiness_engine(app: Flask) -> Engine:
    """An engine of the app's database for the probe alone, with the probe's short timeouts.

    The app's own engine waits `DATABASE_CONNECT_TIMEOUT_SECONDS` for a
    connection, and its pool may be exhausted by stuck requests; a fresh
    connection each time also proves new connections can be made.
    """
    engine = app.extensions.get("readiness_engine")
    if engine is None:
        url = app.config["SQLALCHEMY_DATABASE_URI"]
        # The app's own engine settings, with the probe's short waits and no pool.
        options = engine_options(url, PROBE_STATEMENT_TIMEOUT_MS, PROBE_CONNECT_TIMEOUT_SECONDS)
        options.pop("pool_timeout", None)
        options.pop("pool_pre_ping", None)
        engine = create_engine(url, poolclass=NullPool, **options)
        app.extensions["readiness_engine"] = engine
    return engine


def run_checks(checks: Mapping[str, Callable[[], None]], timeout: float) -> dict[str, str]:
    """Run the checks side by side: "ok" for each that returned within `timeout`, else "down"."""
    results: dict[str, str] = {}
    threads = []
    for name, check in checks.items():
        # A copy of the context, so the thread's log lines carry the request id.
        thread = threading.Thread(
            target=copy_context().run,
            args=(_record, name, check, results),
            name=f"readiness-{name}",
            daemon=True,
        )
        thread.start()
        threads.append(thread)
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(deadline - time.monotonic(), 0))
    return {name: results.get(name, "down") for name in checks}


def _record(name: str, check: Callable[[], None], results: dict[str, str]) -> None:
    try:
        check()
    except Exception as error:  # whatever the failure, the dependency is not usable
        log.warning("readiness: %s down: %s", name, type(error).__name__)
        results[name] = "down"
    else:
        results[name] = "ok"


def _ping_database(engine: Engine) -> None:
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))


def _ping_redis(url: str) -> None:
    client = redis.Redis.from_url(
        url,
        socket_timeout=PROBE_TIMEOUT_SECONDS,
        socket_connect_timeout=PROBE_TIMEOUT_SECONDS,
        retry=Retry(NoBackoff(), 0),  # one try: the probe asks again soon enough
    )
    try:
        client.ping()
    finally:
        client.close()
