"""The outbox relay, running inside every `celery -A worker worker` process.

A worker bootstep starts a thread that publishes due outbox rows every
OUTBOX_RELAY_SECONDS (at once again while a batch comes back full). Several
workers may relay at once: rows are taken with SKIP LOCKED.
"""

from __future__ import annotations

import logging
import threading

from celery import bootsteps
from celery.worker import WorkController
from flask import Flask

from quote_service.extensions import db
from quote_service.services.outbox import relay_once

log = logging.getLogger(__name__)


class OutboxRelay:
    def __init__(self, app: Flask) -> None:
        self.app = app
        self.interval = app.config["OUTBOX_RELAY_SECONDS"]
        self.batch_size = app.config["OUTBOX_BATCH_SIZE"]
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="outbox-relay", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            published = self.run_once()
            if published < self.batch_size:
                self._stop.wait(self.interval)

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
