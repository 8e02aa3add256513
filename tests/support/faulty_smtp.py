"""A real SMTP server (aiosmtpd) that misbehaves on cue: per-recipient replies and a stall.

- `reply_to(recipient, "421 ...", ...)`: the next DATA for that address gets these
  replies, one per attempt, instead of being accepted; targeting an address keeps a
  test deterministic whatever order the worker sends its emails in.
- `stall_next(suffix)`: the next message (to an address ending with `suffix`) is
  taken (recorded as received, the way an MTA queues it before answering) and the
  reply is held back until `release()`, so a test can kill the sender while it
  waits inside `smtplib.sendmail`.
- `slow_down(seconds)`: every accepted message is answered that late.

Every DATA is also logged in `attempts` (recipients and the reply code given), so
a test can tell a message that was never retried from one that was.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from dataclasses import dataclass, field

from aiosmtpd.controller import Controller

from tests.support.smtp import Received

ACCEPTED = "250 Message accepted for delivery"
#: The longest a stalled reply is held when nobody releases it.
STALL_LIMIT_SECONDS = 60.0
STALL_POLL_SECONDS = 0.05


@dataclass
class Attempt:
    recipients: list[str]
    reply: str


@dataclass
class FaultyHandler:
    replies: dict[str, deque[str]] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)
    stall_armed: bool = False
    # With a suffix, only a message to an address ending with it is stalled.
    stall_suffix: str = ""
    stalled: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Seconds every accepted message takes before its reply: a slow server.
    delay: float = 0.0

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: ANN001, N802
        recipients = [address.lower() for address in envelope.rcpt_tos]
        with self.lock:
            scripted = next(
                (self.replies[r] for r in recipients if self.replies.get(r)),
                None,
            )
            if scripted is not None:
                reply = scripted.popleft()
                self.attempts.append(Attempt(recipients, reply))
                return reply
            self.received.append(Received(envelope.mail_from, recipients, bytes(envelope.content)))
            self.attempts.append(Attempt(recipients, ACCEPTED))
            stall = self.stall_armed and any(r.endswith(self.stall_suffix) for r in recipients)
            if stall:
                self.stall_armed = False
        if self.delay:
            await asyncio.sleep(self.delay)
        if stall:
            self.stalled.set()
            loop = asyncio.get_running_loop()
            deadline = loop.time() + STALL_LIMIT_SECONDS
            while not self.released.is_set() and loop.time() < deadline:
                await asyncio.sleep(STALL_POLL_SECONDS)
        return ACCEPTED


class FaultySmtpSink:
    def __init__(self, port: int) -> None:
        self.handler = FaultyHandler()
        self.host = "127.0.0.1"
        self.port = port
        self.controller = Controller(self.handler, hostname=self.host, port=port)

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        # A reply still held back would keep the server's loop busy past stop().
        self.handler.released.set()
        self.controller.stop()

    def reply_to(self, recipient: str, *replies: str) -> None:
        with self.handler.lock:
            self.handler.replies.setdefault(recipient.lower(), deque()).extend(replies)

    def slow_down(self, seconds: float) -> None:
        """Answer every accepted message `seconds` late, like a slow or distant server."""
        self.handler.delay = seconds

    def stall_next(self, recipient_suffix: str = "") -> None:
        """Hold back the reply to the next message (to an address ending with the suffix)."""
        with self.handler.lock:
            self.handler.stall_armed = True
            self.handler.stall_suffix = recipient_suffix.lower()
            self.handler.stalled.clear()
            self.handler.released.clear()

    def wait_stalled(self, timeout: float) -> bool:
        """Block until a message is being held back (or `timeout` s pass)."""
        return self.handler.stalled.wait(timeout)

    def release(self) -> None:
        self.handler.released.set()

    @property
    def received(self) -> list[Received]:
        with self.handler.lock:
            return list(self.handler.received)

    @property
    def attempts(self) -> list[Attempt]:
        with self.handler.lock:
            return list(self.handler.attempts)

    def to(self, recipient: str) -> list[Received]:
        return [r for r in self.received if recipient.lower() in r.recipients]

    def attempts_for(self, recipient: str) -> list[Attempt]:
        return [a for a in self.attempts if recipient.lower() in a.recipients]
