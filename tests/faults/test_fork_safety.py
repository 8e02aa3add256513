"""The fork rule: a prefork worker's main process runs no thread; its relay is a process of its own.

A thread in a process that forks may hold a lock (SQLAlchemy's mapper
configuration, a connection pool, logging) at the moment a pool child is
forked; the child inherits it held and hangs. So the worker's main process
must run only its own main thread, and the outbox relay lives in a companion
process that never forks: started by the worker, restarted when it dies,
stopped on a warm shutdown.
"""

from __future__ import annotations

import os
import signal

import pytest
from flask import Flask

from quote_service.extensions import db
from tests.faults.conftest import StartWorker
from tests.faults.state import pending_outbox
from tests.payloads import valid_body
from tests.support.smtp import SmtpSink
from tests.support.worker_process import WorkerProcess, thread_count

URL = "/api/v1/quote-requests"


def submit_and_wait(app: Flask, worker: WorkerProcess, sink: SmtpSink, email: str) -> None:
    response = app.test_client().post(URL, json=valid_body(email=email))
    assert response.status_code == 201
    worker.wait_for(
        lambda: bool(sink.to(email)) and pending_outbox(app) == 0,
        30,
        f"the acknowledgement to {email}",
    )


@pytest.mark.timeout(90)
def test_the_forking_process_runs_no_thread_and_its_relay_is_supervised(
    app: Flask, broker: str, faulty_smtp: SmtpSink, start_worker: StartWorker
) -> None:
    worker = start_worker(broker, concurrency=2)
    worker.wait_for(
        lambda: len(worker.pool_pids()) == 2 and len(worker.relay_pids()) == 1,
        30,
        "two pool children and one relay process",
    )
    main = worker.pid
    assert main is not None
    # Only the main thread: no thread can hold a lock when a child is forked.
    assert thread_count(main) == 1
    submit_and_wait(app, worker, faulty_smtp, "fork.one@example.org")

    # The relay dies: the worker starts another, and work keeps flowing.
    [relay] = worker.relay_pids()
    os.kill(relay, signal.SIGKILL)
    worker.wait_for(lambda: worker.relay_pids() not in ([], [relay]), 15, "a new relay process")
    submit_and_wait(app, worker, faulty_smtp, "fork.two@example.org")
    assert thread_count(main) == 1

    # A warm shutdown finishes, and stops the relay on its way.
    worker.stop()
    assert worker.stopped_warm, worker.log_tail()
    # The relay ended by itself on the worker's SIGTERM (it logs it on its way out).
    assert worker.log_text().count("outbox relay process stopped") == 1


def test_a_pool_child_drops_the_database_pool_it_inherited() -> None:
    import worker

    with worker.flask_app.app_context():
        inherited = db.engine.pool
        worker._fresh_connections_after_fork()
        assert db.engine.pool is not inherited
