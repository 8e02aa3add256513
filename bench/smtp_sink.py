"""An SMTP sink on loopback (aiosmtpd) that records when each recipient's mail was accepted.

Only the envelope recipients and the time are kept, never the message: a
pipeline run sends thousands of emails and the harness needs timings only.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.controller import Controller


@dataclass
class _Handler:
    #: recipient -> monotonic time of the first message accepted for it
    first_seen: dict[str, float] = field(default_factory=dict)
    total: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        now = time.monotonic()
        with self.lock:
            self.total += 1
            for recipient in envelope.rcpt_tos:
                self.first_seen.setdefault(recipient.lower(), now)
        return "250 Message accepted for delivery"


class TimingSink:
    def __init__(self, port: int) -> None:
        self.host = "127.0.0.1"
        self.port = port
        self._handler = _Handler()
        # A fixed banner name: the default looks the machine's FQDN up on every connection.
        self._controller = Controller(
            self._handler, hostname=self.host, port=port, server_hostname="bench-sink"
        )

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()

    def reset(self) -> None:
        with self._handler.lock:
            self._handler.first_seen.clear()
            self._handler.total = 0

    @property
    def total(self) -> int:
        """Messages accepted since the last reset."""
        with self._handler.lock:
            return self._handler.total

    def count(self, prefix: str) -> int:
        """Recipients starting with `prefix` that got at least one message."""
        with self._handler.lock:
            return sum(1 for recipient in self._handler.first_seen if recipient.startswith(prefix))

    def arrivals(self, prefix: str) -> dict[str, float]:
        """recipient -> monotonic time its first message was accepted, for `prefix`."""
        with self._handler.lock:
            return {r: t for r, t in self._handler.first_seen.items() if r.startswith(prefix)}
