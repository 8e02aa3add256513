"""The outbox relay, running inside every `celery -A worker worker` process.

A worker bootstep starts a thread that publishes due outbox rows every
OUTBOX_RELAY_SECONDS (at once again while a batch comes back full). On
PostgreSQL it also LISTENs for the NOTIFY that every new outbox row sends on
commit, so new work is published at once rather than at the next poll; the
poll stays, for retries that come due and for a lost notification. Several
workers may relay at once: rows are taken with SKIP LOCKED.
"""

from __future__ import annotations

import logging
import threading

import psycopg
from celery import bootsteps
from celery.worker import WorkController
from flask import Flask
from sqlalchemy.engine import make_url

from quote_service.extensions import db
from quote_service.services.outbox import NOTIFY_CHANNEL, relay_once

log = logging.getLogger(__name__)


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
            for _ in self.connection.notifies(timeout=self.interval, stop_after=1):
                pass
        except psycopg.Error:
            # Database gone: plain polling until it is back.
            self.close()
            self.stop.wait(self.interval)

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


class OutboxRelay:
    def __init__(self, app: Flask) -> None:
        self.app = app
        self.interval = app.config["OUTBOX_RELAY_SECONDS"]
        self.batch_size = app.config["OUTBOX_BATCH_SIZE"]
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._wakeup = Wakeup(app.config["SQLALCHEMY_DATABASE_URI"], self.interval, self._stop)

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="outbox-relay", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                published = self.run_once()
                if published < self.batch_size and not self._stop.is_set():
                    self._wakeup.wait()
        finally:
            self._wakeup.close()

    def run_once(self) -> int:
        with self.app.app_context():
            try:
                return relay_once(batch_size=self.batch_size)
            except Exception as error:  # broker or database down: try again next round
                log.warning("outbox relay: %s", type(error).__name__)
                return 0
            finally:
                db.session.remove()


class OutboxRelayStep(bootsteps.StartStopStep):
    """Runs an OutboxRelay for the life of the worker.

    The relay is the step's `obj`, so Celery starts it, and stops it on a warm
    or a cold shutdown alike.
    """

    def create(self, worker: WorkController) -> OutboxRelay:
        return OutboxRelay(worker.app.flask_app)
