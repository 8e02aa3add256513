"""A real SMTP server (aiosmtpd) for tests, with scripted replies."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default

from aiosmtpd.controller import Controller


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
class ScriptedHandler:
    """Accepts mail, or answers the next scripted reply (e.g. "421 ...") instead."""

    replies: deque[str] = field(default_factory=deque)
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: ANN001, N802
        with self.lock:
            if self.replies:
                return self.replies.popleft()
            self.received.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.content))
            )
        return "250 Message accepted for delivery"


class SmtpSink:
    def __init__(self, port: int, *, smtputf8: bool = False) -> None:
        self.handler = ScriptedHandler()
        # aiosmtpd offers SMTPUTF8 only when told to, like many real servers.
        self.controller = Controller(
            self.handler, hostname="127.0.0.1", port=port, enable_SMTPUTF8=smtputf8
        )
        self.host = "127.0.0.1"
        self.port = port

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()

    def reply_next(self, *replies: str) -> None:
        self.handler.replies.extend(replies)

    def reset(self) -> None:
        with self.handler.lock:
            self.handler.replies.clear()
            self.handler.received.clear()

    @property
    def received(self) -> list[Received]:
        with self.handler.lock:
            return list(self.handler.received)

    def to(self, recipient: str) -> list[Received]:
        return [r for r in self.received if recipient in r.recipients]


def wait_until(condition: Callable[[], bool], timeout: float = 20.0, step: float = 0.05) -> bool:
    """Poll `condition` until it holds or the deadline passes; return whether it held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()
