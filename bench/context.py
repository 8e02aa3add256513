"""What every scenario gets: the settings, the running stack, the database and a log."""

from __future__ import annotations

import secrets
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from bench import database
from bench.bulk import Catalog, RequestFactory
from bench.settings import Settings
from bench.stack import Stack
from quote_service.crypto import Keyring
from tests.support.polling import wait_until

_STARTED = time.monotonic()


def log(message: str) -> None:
    """A progress line on stderr, stamped with the seconds since the harness started."""
    print(f"[bench {time.monotonic() - _STARTED:6.1f}s] {message}", file=sys.stderr, flush=True)


@dataclass
class Run:
    settings: Settings
    stack: Stack
    run_dir: Path
    #: A coordinator's API token, for the queue.
    token: str
    coordinator_id: int
    catalog: Catalog
    #: Distinguishes this run's Idempotency-Keys and addresses from any earlier run's.
    tag: str = field(default_factory=lambda: secrets.token_hex(3))

    @property
    def keyring(self) -> Keyring:
        return Keyring([self.stack.encryption_key])

    def factory(self) -> RequestFactory:
        return RequestFactory(self.keyring, self.catalog)

    def connect(self) -> psycopg.Connection:
        return database.connect(self.settings.database_url)

    def log(self, message: str) -> None:
        log(message)

    def pending_outbox(self) -> int:
        with self.connect() as conn:
            row = conn.execute(
                "SELECT count(*) FROM outbox_message WHERE completed_at IS NULL"
            ).fetchone()
        return int(row[0]) if row else 0

    def wait_drained(self, timeout: float) -> bool:
        """Wait until every outbox row's work is done: nothing spills into the next trial."""
        return wait_until(lambda: self.pending_outbox() == 0, timeout, step=0.2)
