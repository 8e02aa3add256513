"""The one SMTP server (aiosmtpd) of the tests and the bench, on loopback.

It accepts every message and records it, unless told otherwise:

- `reply_next("421 ...", ...)`: the next DATA commands, whoever they are for, get
  these replies instead of being accepted.
- `reply_to(recipient, "421 ...", ...)`: the next DATA for that address gets these
  replies, one per attempt; targeting an address keeps a test deterministic
  whatever order the worker sends its emails in.
- `stall_next(suffix)`: the next message (to an address ending with `suffix`) is
  taken (recorded as received, the way an MTA queues it before answering) and the
  reply is held back until `release()`, so a test can kill the sender while it
  waits inside `smtplib.sendmail`.
- `slow_down(seconds)`: every accepted message is answered that late.

Every DATA is logged in `attempts` (recipients and the reply given), so a test can
tell a message that was never retried from one that was. Every accepted message
also counts in `total` and stamps the time its recipients first got mail
(`arrivals`). With ``keep_messages=False`` (the bench: thousands of emails) only
those counts and times are kept, never the messages or the attempts.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from typing import Any

from aiosmtpd.controller import Controller

ACCEPTED = "250 Message accepted for delivery"
#: The longest a stalled reply is held when nobody releases it.
STALL_LIMIT_SECONDS = 60.0
STALL_POLL_SECONDS = 0.05


@dataclass
class Received:
    envelope_from: str
    recipients: list[str]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.raw, policy=default)
        assert isinstance(parsed, EmailMessage)
        return parsed

    def text(self) -> str:
        return self.message.get_body(("plain",)).get_content()

    def html(self) -> str:
        return self.message.get_body(("html",)).get_content()


@dataclass
class Attempt:
    recipients: list[str]
    reply: str
    #: The client's (address, port): attempts over one connection share it.
    peer: tuple[str, int]


@dataclass
class _Handler:
    fold_case: bool
    keep_messages: bool
    #: Replies for the next DATA commands, whoever they are for.
    replies: deque[str] = field(default_factory=deque)
    #: Replies for the next DATA commands to one (lower-cased) address.
    replies_to: dict[str, deque[str]] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)
    #: lower-cased recipient -> monotonic time of the first message accepted for it
    first_seen: dict[str, float] = field(default_factory=dict)
    total: int = 0
    stall_armed: bool = False
    # With a suffix, only a message to an address ending with it is stalled.
    stall_suffix: str = ""
    stalled: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Seconds every accepted message takes before its reply: a slow server.
    delay: float = 0.0

    def _record(self, attempt: Attempt) -> None:
        if self.keep_messages:
            self.attempts.append(attempt)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        now = time.monotonic()
        lowered = [address.lower() for address in envelope.rcpt_tos]
        recipients = lowered if self.fold_case else list(envelope.rcpt_tos)
        with self.lock:
            scripted = self.replies or next(
                (self.replies_to[r] for r in lowered if self.replies_to.get(r)), None
            )
            if scripted:
                reply = scripted.popleft()
                self._record(Attempt(recipients, reply, session.peer))
                return reply
            if self.keep_messages:
                self.received.append(
                    Received(envelope.mail_from, recipients, bytes(envelope.content))
                )
            self._record(Attempt(recipients, ACCEPTED, session.peer))
            self.total += 1
            for recipient in lowered:
                self.first_seen.setdefault(recipient, now)
            stall = self.stall_armed and any(r.endswith(self.stall_suffix) for r in lowered)
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


class SmtpSink:
    """An SMTP server on 127.0.0.1:`port` that records what it accepts.

    Args:
        smtputf8: offer SMTPUTF8 (aiosmtpd does only when told to, like many real servers).
        fold_case: record recipients lower-cased, and look them up whatever their case.
        keep_messages: keep the messages and attempts (else only counts and times).
        server_hostname: the name in the banner; by default aiosmtpd looks the machine's
            FQDN up on every connection, which a sink taking thousands of them avoids.
    """

    def __init__(
        self,
        port: int,
        *,
        smtputf8: bool = False,
        fold_case: bool = False,
        keep_messages: bool = True,
        server_hostname: str | None = None,
    ) -> None:
        self.host = "127.0.0.1"
        self.port = port
        self.handler = _Handler(fold_case=fold_case, keep_messages=keep_messages)
        self.controller = Controller(
            self.handler,
            hostname=self.host,
            port=port,
            enable_SMTPUTF8=smtputf8,
            server_hostname=server_hostname,
        )

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        # A reply still held back would keep the server's loop busy past stop().
        self.handler.released.set()
        self.controller.stop()

    def reset(self) -> None:
        """Forget what was received and every scripted reply, stall and delay."""
        handler = self.handler
        with handler.lock:
            handler.replies.clear()
            handler.replies_to.clear()
            handler.received.clear()
            handler.attempts.clear()
            handler.first_seen.clear()
            handler.total = 0
            handler.stall_armed = False
            handler.stall_suffix = ""
            handler.delay = 0.0

    # ------------------------------------------------------------------ scripting

    def reply_next(self, *replies: str) -> None:
        with self.handler.lock:
            self.handler.replies.extend(replies)

    def reply_to(self, recipient: str, *replies: str) -> None:
        with self.handler.lock:
            self.handler.replies_to.setdefault(recipient.lower(), deque()).extend(replies)

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

    # ------------------------------------------------------------------ what arrived

    @property
    def received(self) -> list[Received]:
        with self.handler.lock:
            return list(self.handler.received)

    @property
    def attempts(self) -> list[Attempt]:
        with self.handler.lock:
            return list(self.handler.attempts)

    def _key(self, recipient: str) -> str:
        return recipient.lower() if self.handler.fold_case else recipient

    def to(self, recipient: str) -> list[Received]:
        key = self._key(recipient)
        return [r for r in self.received if key in r.recipients]

    def attempts_for(self, recipient: str) -> list[Attempt]:
        key = self._key(recipient)
        return [a for a in self.attempts if key in a.recipients]

    @property
    def total(self) -> int:
        """Messages accepted since the last reset."""
        with self.handler.lock:
            return self.handler.total

    def count(self, prefix: str) -> int:
        """Recipients starting with `prefix` (lower-case) that got at least one message."""
        with self.handler.lock:
            return sum(1 for recipient in self.handler.first_seen if recipient.startswith(prefix))

    def arrivals(self, prefix: str) -> dict[str, float]:
        """recipient -> monotonic time its first message was accepted, for `prefix`."""
        with self.handler.lock:
            return {r: t for r, t in self.handler.first_seen.items() if r.startswith(prefix)}
