"""The outbox relay, running beside every `celery -A worker worker`.

The relay publishes due outbox rows every OUTBOX_RELAY_SECONDS (at once again
while a batch comes back full). On PostgreSQL it also LISTENs for the NOTIFY
that every new outbox row sends on commit, so new work is published at once
rather than at the next poll; the poll stays, for retries that come due and
for a lost notification. Several workers may relay at once: rows are taken
with SKIP LOCKED.

Where it runs follows the fork rule (shared design, "Worker processes"): a
process that forks runs no thread that may hold a lock a child needs. With
the prefork pool the worker's main process forks pool children at any
moment (`--max-tasks-per-child`, a child lost), so there the relay is a
companion process of its own, `python -m worker.relay`: started by the
worker, restarted when it dies, stopped (SIGTERM, then SIGKILL) when the
worker shuts down, and ending by itself if the worker is killed. That process
never forks. It also serves the worker's metrics (WORKER_METRICS_PORT), the
other thread a forking worker would otherwise run. With a pool that does not
fork (solo, threads: `make run`, the in-process test worker) the relay is a
thread of the worker.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

import psycopg
from celery import bootsteps
from celery.concurrency.prefork import TaskPool as PreforkPool
from celery.worker import WorkController
from flask import Flask
from sqlalchemy.engine import make_url

from quote_service.extensions import db
from quote_service.services.outbox import NOTIFY_CHANNEL, relay_once
from worker.observability import MetricsServer

log = logging.getLogger(__name__)

#: How often the worker checks that its relay process is alive.
SUPERVISE_SECONDS = 1.0
#: How long a relay process may take to finish its batch when asked to stop.
STOP_SECONDS = 10.0
#: The longest a wait for a notification goes without looking whether the relay
#: was asked to stop: a poll interval of a minute must not make shutdown wait for it.
WAIT_SLICE_SECONDS = 0.25


class Wakeup:
    """Waits for the outbox's NOTIFY or for the poll interval, whichever comes first."""

    def __init__(self, database_url: str, interval: float, stop: threading.Event) -> None:
        self.interval = interval
        self.stop = stop
        url = make_url(database_url)
        self.libpq_url = (
            url.set(drivername="postgresql").render_as_string(hide_password=False)
            if url.get_backend_name() == "postgresql"
            else None
        )
        self.connection: psycopg.Connection | None = None

    def wait(self) -> None:
        if self.libpq_url is None:
            self.stop.wait(self.interval)
            return
        try:
            if self.connection is None or self.connection.closed:
                self.connection = psycopg.connect(
                    self.libpq_url, autocommit=True, connect_timeout=2
                )
                self.connection.execute(f"LISTEN {NOTIFY_CHANNEL}")
            deadline = time.monotonic() + self.interval
            while not self.stop.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                wait = min(remaining, WAIT_SLICE_SECONDS)
                for _ in self.connection.notifies(timeout=wait, stop_after=1):
                    return  # a new row: publish it now
        except psycopg.Error:
            # Database gone: plain polling until it is back.
            self.close()
            self.stop.wait(self.interval)

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


class OutboxRelay:
    """The relay loop; `start()` runs it in a thread, `run()` in the calling thread."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.interval = app.config["OUTBOX_RELAY_SECONDS"]
        self.batch_size = app.config["OUTBOX_BATCH_SIZE"]
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._wakeup = Wakeup(app.config["SQLALCHEMY_DATABASE_URI"], self.interval, self._stop)
        # The broker connection, kept from batch to batch and dropped after any
        # error: the next batch then opens a fresh one (after an outage, say).
        self._broker: Any = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, name="outbox-relay", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = STOP_SECONDS) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def run(self, still_wanted: Any = lambda: True) -> None:
        try:
            while not self._stop.is_set() and still_wanted():
                handled = self.run_once()
                if handled < self.batch_size and not self._stop.is_set():
                    self._wakeup.wait()
        finally:
            self._wakeup.close()
            self._drop_broker()

    def run_once(self) -> int:
        with self.app.app_context():
            try:
                if self._broker is None:
                    self._broker = self.app.extensions["celery"].connection_for_write()
                return relay_once(batch_size=self.batch_size, connection=self._broker)
            except Exception as error:  # broker or database down: try again next round
                log.warning("outbox relay: %s", type(error).__name__)
                self._drop_broker()
                return 0
            finally:
                db.session.remove()

    def _drop_broker(self) -> None:
        broker, self._broker = self._broker, None
        if broker is not None:
            try:
                broker.release()
            except Exception as error:  # already broken: nothing more to free
                log.debug("outbox relay: closing the broker connection: %s", error)


class RelayProcess:
    """The relay as a companion process of a forking worker, supervised by it.

    Supervision runs on the worker's own timer (its event loop with a Redis
    broker), so the worker's main process gains no thread.
    """

    def __init__(self, worker: WorkController) -> None:
        self.worker = worker
        self.process: subprocess.Popen[bytes] | None = None
        self._timer_entry: Any = None
        self._stopping = False

    def command(self) -> list[str]:
        command = [sys.executable, "-m", "worker.relay", "--parent", str(os.getpid())]
        if self.worker.app.flask_app.config["WORKER_METRICS_PORT"] is not None:
            command.append("--metrics")  # its server is a thread too: it lives here
        return command

    def start(self) -> None:
        self._stopping = False
        self._spawn()
        self._timer_entry = self.worker.timer.call_repeatedly(SUPERVISE_SECONDS, self.supervise)

    def _spawn(self) -> None:
        # fork + exec at once: the new process inherits no lock and no thread.
        self.process = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL)
        log.info("outbox relay process %d started", self.process.pid)

    def supervise(self) -> None:
        if self._stopping or self.process is None:
            return
        code = self.process.poll()
        if code is not None:
            log.warning("outbox relay process exited (%s): starting a new one", code)
            self._spawn()

    def stop(self) -> None:
        self._stopping = True
        if self._timer_entry is not None:
            self._timer_entry.cancel()
            self._timer_entry = None
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_SECONDS)


def pool_forks(worker: WorkController) -> bool:
    pool = worker.pool_cls
    return isinstance(pool, type) and issubclass(pool, PreforkPool)


class OutboxRelayStep(bootsteps.StartStopStep):
    """Runs the outbox relay for the life of the worker.

    The relay (a process or a thread, see the module's docstring) is the
    step's `obj`, so Celery starts it, and stops it on a warm or a cold
    shutdown alike.
    """

    requires = ("celery.worker.components:Timer",)

    def create(self, worker: WorkController) -> RelayProcess | OutboxRelay:
        if pool_forks(worker):
            return RelayProcess(worker)
        return OutboxRelay(worker.app.flask_app)


def main(argv: list[str] | None = None) -> None:
    """`python -m worker.relay`: the relay loop, until SIGTERM or until its worker is gone."""
    parser = argparse.ArgumentParser(prog="python -m worker.relay")
    parser.add_argument("--parent", type=int, help="end when this process is gone")
    parser.add_argument("--metrics", action="store_true", help="serve the worker's metrics")
    args = parser.parse_args(argv)

    from worker import flask_app

    metrics = None
    if args.metrics:
        config = flask_app.config
        metrics = MetricsServer(config["WORKER_METRICS_PORT"], config["PROMETHEUS_MULTIPROC_DIR"])
        metrics.start()
    relay = OutboxRelay(flask_app)
    signal.signal(signal.SIGTERM, lambda *_: relay._stop.set())
    signal.signal(signal.SIGINT, lambda *_: relay._stop.set())

    def still_wanted() -> bool:
        # Killed with SIGKILL, the worker cannot stop us: we are re-parented.
        return args.parent is None or os.getppid() == args.parent

    started = time.monotonic()
    try:
        relay.run(still_wanted)
    finally:
        if metrics is not None:
            metrics.stop()
    log.info("outbox relay process stopped after %.0f s", time.monotonic() - started)


if __name__ == "__main__":
    main()
