"""What a run starts on loopback: the SMTP sink, the API and its floor, the workers."""

from __future__ import annotations

import os
import secrets
import sys
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.fernet import Fernet

from bench.settings import Settings
from tests.support.processes import ManagedProcess, free_port
from tests.support.smtp import SmtpSink

HOST = "127.0.0.1"
# High enough never to answer 429 during a run, yet the limiter still counts in Redis.
RATE_LIMIT = "100000000/minute"
# The gunicorn and Celery command lines of the deployment (docker-compose.yml),
# with the process counts of this machine.
PROJECT_APP = "quote_service:create_app()"
FLOOR_APP = "bench.floor_intake:create_app()"


@dataclass
class Stack:
    settings: Settings
    run_dir: Path
    sink: SmtpSink = field(init=False)
    encryption_key: str = field(default_factory=lambda: Fernet.generate_key().decode())
    secret_key: str = field(default_factory=lambda: secrets.token_hex(32))
    api_port: int = field(default_factory=free_port)
    floor_port: int = field(default_factory=free_port)
    processes: dict[str, ManagedProcess] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Only counts and arrival times: a pipeline run sends thousands of emails.
        self.sink = SmtpSink(free_port(), keep_messages=False, server_hostname="bench-sink")

    def environment(self) -> dict[str, str]:
        """The environment of every process: the deployment's variables, pointing at loopback."""
        env = {
            key: value
            for key, value in os.environ.items()
            # The bench sets these itself; stray ones from a shell must not leak in.
            if not key.startswith(("PROMETHEUS_MULTIPROC_DIR", "MAIL_", "SMTP_"))
        }
        env.update(
            {
                "DATABASE_URL": self.settings.database_url,
                "REDIS_URL": self.settings.redis_url,
                "SMTP_HOST": self.sink.host,
                "SMTP_PORT": str(self.sink.port),
                "SECRET_KEY": self.secret_key,
                "DATA_ENCRYPTION_KEYS": self.encryption_key,
                "RATE_LIMIT_INTAKE": RATE_LIMIT,
                "RATE_LIMIT_INTAKE_ATTEMPTS": RATE_LIMIT,
                "PYTHONUNBUFFERED": "1",
            }
        )
        return env

    def _start(self, name: str, command: list[str]) -> ManagedProcess:
        process = ManagedProcess(
            name, command, self.environment(), self.run_dir / f"{name}.log", die_with_parent=True
        )
        self.processes[name] = process.start()
        return process

    def _gunicorn(self, name: str, app: str, port: int) -> ManagedProcess:
        return self._start(
            name,
            [
                sys.executable,
                "-m",
                "gunicorn",
                f"--bind={HOST}:{port}",
                f"--workers={self.settings.http_workers}",
                app,
            ],
        )

    def start_apis(self) -> None:
        """Both under gunicorn, started together; return once both answer."""
        api = self._gunicorn("api", PROJECT_APP, self.api_port)
        floor = self._gunicorn("floor-api", FLOOR_APP, self.floor_port)
        api.wait_http(f"http://{HOST}:{self.api_port}/healthz")
        floor.wait_http(f"http://{HOST}:{self.floor_port}/healthz")

    def _celery(self, name: str, app: str) -> ManagedProcess:
        return self._start(
            name,
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                app,
                "worker",
                f"--concurrency={self.settings.worker_concurrency}",
                "--loglevel=INFO",
                f"--hostname={name}@%h",
            ],
        )

    def start_workers(self) -> None:
        """The project's worker (with its outbox relay) and the floor's, same options."""
        self._celery("worker", "worker")
        self._celery("floor-worker", "bench.floor_tasks")

    def _stop(self, names: list[str]) -> None:
        # All at once: each warm shutdown takes a moment, and they do not depend on each other.
        stopping = [self.processes.pop(name) for name in names if name in self.processes]
        for process in stopping:
            process.terminate()
        for process in stopping:
            process.stop()

    def stop_workers(self) -> None:
        self._stop(["worker", "floor-worker"])

    def check_alive(self) -> None:
        for process in self.processes.values():
            if not process.alive():
                raise RuntimeError(f"{process.name} died:\n{process.log_tail()}")

    def stop(self) -> None:
        self._stop(list(self.processes))
