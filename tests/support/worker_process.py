"""A real `celery -A worker worker` in a subprocess, for tests that kill or starve it.

The `worker` package builds its Flask app from the environment, so the process is
configured the way a deployment configures it: DATABASE_URL, REDIS_URL, SMTP_* and
the outbox timings. It runs in its own process group, so `kill()` takes the whole
worker (and any pool children) down at once, like a node dying.
"""

from __future__ import annotations

import os
import signal
import sys
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

from tests.support.processes import ManagedProcess, child_pids, command_line, thread_count

__all__ = ["WorkerProcess", "thread_count", "worker_environment"]


def worker_environment(
    database_url: str,
    redis_url: str,
    smtp_host: str,
    smtp_port: int,
    **overrides: str | int | float | None,
) -> dict[str, str]:
    """The environment of a worker process: this one's, plus the service's settings.

    Defaults keep fault tests quick: a relay round every 0.2 s, a 5 s lease and
    sub-second retry backoff. An override of None leaves the variable unset, so
    the service's own default applies (a test of a promise the defaults make).
    """
    settings: dict[str, str | int | float | None] = {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "SMTP_HOST": smtp_host,
        "SMTP_PORT": smtp_port,
        "SMTP_TIMEOUT_SECONDS": 10,
        "OUTBOX_RELAY_SECONDS": 0.2,
        "OUTBOX_LEASE_SECONDS": 5,
        "NOTIFICATION_RETRY_BASE_SECONDS": 0.2,
        "NOTIFICATION_RETRY_MAX_SECONDS": 1,
        "ACKNOWLEDGEMENTS_PER_RECIPIENT_PER_DAY": 1000,
        "COORDINATORS_EMAIL": "coordinators@quote-service.example",
        "QUOTE_FANOUT": 1,
        **overrides,
    }
    environment = {**os.environ, **{name: str(value) for name, value in settings.items()}}
    return {
        name: value
        for name, value in environment.items()
        if not (name in settings and settings[name] is None)
    }


class WorkerProcess(ManagedProcess):
    """One `celery -A worker worker` process (solo pool unless `concurrency` > 1).

    Its warm shutdown is Celery's: SIGTERM to the main process only, which stops its
    pool and relay itself; a worker that ignores it logs its threads' stacks (SIGUSR1).
    """

    hang_signal = signal.SIGUSR1

    def __init__(
        self,
        environment: Mapping[str, str],
        log_path: Path,
        concurrency: int = 1,
        extra_args: Sequence[str] = (),
    ) -> None:
        super().__init__("worker", [], environment, log_path, signal_group=False)
        self.concurrency = concurrency
        self.extra_args = list(extra_args)

    def start(self) -> WorkerProcess:
        pool = (
            ["--pool=solo"] if self.concurrency == 1 else ["--concurrency", str(self.concurrency)]
        )
        command = [sys.executable, "-m", "celery", "-A", "worker", "worker", *pool]
        # A unique node name: a killed worker and its replacement must not look alike.
        command += ["-n", f"faults-{uuid.uuid4().hex[:8]}@%h", "--loglevel=WARNING"]
        command += ["--without-mingle", "--without-gossip", *self.extra_args]
        self.command = command
        super().start()
        return self

    def relay_pids(self) -> list[int]:
        """The worker's outbox relay processes (`python -m worker.relay`), if any."""
        assert self._process is not None
        return [
            pid
            for pid in child_pids(self._process.pid)
            if command_line(pid)[1:3] == ["-m", "worker.relay"]
        ]

    def pool_pids(self) -> list[int]:
        """The worker's pool children (every child that is not its relay)."""
        assert self._process is not None
        relay = set(self.relay_pids())
        return [pid for pid in child_pids(self._process.pid) if pid not in relay]
