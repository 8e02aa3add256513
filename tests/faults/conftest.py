"""Fixtures for fault injection: subprocess workers, a misbehaving SMTP server, a clean broker."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from flask import Flask

from tests.support.processes import free_port
from tests.support.servers import Server
from tests.support.smtp import SmtpSink
from tests.support.worker_process import WorkerProcess, worker_environment

StartWorker = Callable[..., WorkerProcess]


@pytest.fixture
def faulty_smtp() -> Iterator[SmtpSink]:
    sink = SmtpSink(free_port(), fold_case=True)
    sink.start()
    yield sink
    sink.stop()


@pytest.fixture
def broker(redis_server: Server) -> Iterator[str]:
    """The session's Redis, emptied before and after: no message outlives its test."""
    with redis.Redis.from_url(redis_server.url) as client:
        client.flushdb()
    yield redis_server.url
    with redis.Redis.from_url(redis_server.url) as client:
        client.flushdb()


@pytest.fixture
def start_worker(
    app: Flask, postgres: Server, faulty_smtp: SmtpSink, tmp_path: Path
) -> Iterator[StartWorker]:
    """Start `celery -A worker worker` subprocesses; every one is stopped after the test.

    `app` is required so the schema exists before a worker polls the outbox, and
    so the tables are emptied only once the workers are gone.
    """
    started: list[WorkerProcess] = []

    def start(
        redis_url: str,
        *,
        concurrency: int = 1,
        extra_args: tuple[str, ...] = (),
        **settings: str | int | float | None,
    ) -> WorkerProcess:
        environment = worker_environment(
            postgres.url, redis_url, faulty_smtp.host, faulty_smtp.port, **settings
        )
        log_path = tmp_path / f"worker-{len(started) + 1}.log"
        worker = WorkerProcess(
            environment, log_path, concurrency=concurrency, extra_args=extra_args
        )
        started.append(worker)
        return worker.start()

    yield start
    for worker in started:
        worker.stop()
