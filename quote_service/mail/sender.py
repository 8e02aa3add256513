"""Senders: SMTP in deployments, `.eml` files under instance/mail/ for `make run`."""

from __future__ import annotations

import hashlib
import os
import re
import smtplib
import ssl
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.utils import parseaddr
from pathlib import Path
from typing import Any, Protocol

from quote_service.addresses import envelope


class SendError(Exception):
    """Sending failed; `permanent` says whether trying again can help."""

    permanent = False


class TransientSendError(SendError):
    """Connection trouble or a 4xx reply: worth trying again later."""


class PermanentSendError(SendError):
    """A 5xx reply: the same message will never be accepted."""

    permanent = True


class Sender(Protocol):
    def send(self, recipient: str, raw: bytes, label: str = "") -> None:
        """Send `raw` to `recipient`; `label` (e.g. `QR-7K4M2P9X-acknowledgement`) names
        the message where a person looks for it, never inside it."""
        ...


# One SMTP connection per thread, kept for that thread's next send: opening
# one (TCP, banner, EHLO, maybe STARTTLS and AUTH) and closing it cost the
# worker and the server more than the message itself.
_kept = threading.local()
#: A connection idle longer than this is closed rather than reused (servers
#: drop idle clients after a while; Postfix after 300 s).
KEEP_IDLE_SECONDS = 30.0


@dataclass
class _Kept:
    key: tuple[str, int, str, bool]
    smtp: smtplib.SMTP
    pid: int
    last_used: float

    def __post_init__(self) -> None:
        # A thread that ends drops its kept connection: its socket is closed then.
        weakref.finalize(self, self.smtp.close)


@dataclass
class SmtpSender:
    host: str
    port: int
    mail_from: str
    username: str = ""
    password: str = ""
    starttls: bool = False
    timeout: float = 10.0

    def send(self, recipient: str, raw: bytes, label: str = "") -> None:
        envelope_from = parseaddr(self.mail_from)[1]
        to = envelope(recipient)
        # A UTF-8 local part (in RCPT TO and the To header) needs the server's SMTPUTF8.
        international = to.smtputf8 or not raw.isascii()
        with _classified():
            kept = self._connection()
        smtp = kept.smtp
        try:
            with _classified():
                if international and not smtp.has_extn("smtputf8"):
                    # Nothing would change on a retry: this server cannot carry the address.
                    raise PermanentSendError(
                        "the mail server does not offer SMTPUTF8, needed for an address "
                        "whose part before the @ is not ASCII"
                    )
                options = ["SMTPUTF8"] if international else []
                smtp.sendmail(envelope_from, [to.address], raw, mail_options=options)
        except BaseException:
            # Whatever the server or the session is left in, the next send starts afresh.
            _close(smtp)
            raise
        kept.last_used = time.monotonic()
        _kept.connection = kept

    def _key(self) -> tuple[str, int, str, bool]:
        return (self.host, self.port, self.username, self.starttls)

    def _connection(self) -> _Kept:
        """This thread's kept connection to this server if it still answers, else a new one."""
        kept: _Kept | None = getattr(_kept, "connection", None)
        _kept.connection = None  # in use: a failure from here on must not leave it kept
        # A forked child never writes on its parent's socket, not even a QUIT.
        if kept is not None and kept.pid == os.getpid():
            reusable = kept.key == self._key()
            fresh = time.monotonic() - kept.last_used < KEEP_IDLE_SECONDS
            if reusable and fresh and _answers(kept.smtp):
                return kept
            _close(kept.smtp)
        smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        try:
            if self.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if self.username:
                smtp.login(self.username, self.password)
            smtp.ehlo_or_helo_if_needed()
        except BaseException:
            _close(smtp)
            raise
        return _Kept(self._key(), smtp, os.getpid(), time.monotonic())


@contextmanager
def _classified() -> Iterator[None]:
    """SMTP and socket errors as the SendError a delivery acts on."""
    try:
        yield
    except smtplib.SMTPRecipientsRefused as error:
        code, reply = next(iter(error.recipients.values()))
        raise classify(code, reply) from None
    except smtplib.SMTPResponseException as error:
        raise classify(error.smtp_code, error.smtp_error) from None
    except (smtplib.SMTPException, OSError) as error:
        # Refused or dropped connections, timeouts: the server may come back.
        raise TransientSendError(f"connection: {type(error).__name__}: {error}") from None


def close_kept_connection() -> None:
    """Close this thread's kept SMTP connection, if any (a process or a thread that ends)."""
    kept: _Kept | None = getattr(_kept, "connection", None)
    _kept.connection = None
    if kept is not None and kept.pid == os.getpid():
        _close(kept.smtp)


def _answers(smtp: smtplib.SMTP) -> bool:
    """Whether a kept connection still works: NOOP, before anything is sent on it."""
    try:
        return smtp.noop()[0] == 250
    except (smtplib.SMTPException, OSError):
        return False


def _close(smtp: smtplib.SMTP) -> None:
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()


def classify(code: int, reply: bytes | str) -> SendError:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    summary = f"{code} {text}"[:500]
    if 500 <= code < 600:
        return PermanentSendError(summary)
    return TransientSendError(summary)


@dataclass
class FileSender:
    """Writes each message as an `.eml` file: `QR-7K4M2P9X-acknowledgement-<id>.eml`.

    The reference and kind come first, so `ls instance/mail/QR-7K4M2P9X*` finds
    every email of a request; the end is a digest of the Message-ID, so
    sending the same message twice rewrites the same file, and the folder
    holds exactly one file per message.
    """

    directory: Path

    def send(self, recipient: str, raw: bytes, label: str = "") -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256(message_id_of(raw).encode()).hexdigest()[:12]
        safe_label = re.sub(r"[^A-Za-z0-9_-]+", "-", label).strip("-")
        name = f"{safe_label}-{digest}.eml" if safe_label else f"{digest}.eml"
        temporary = self.directory / f".{name}.tmp"
        temporary.write_bytes(raw)
        os.replace(temporary, self.directory / name)


def message_id_of(raw: bytes) -> str:
    for line in raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line.lower().startswith(b"message-id:"):
            return line.split(b":", 1)[1].strip().decode("ascii", "replace")
    return hashlib.sha256(raw).hexdigest()


def sender_from_config(config: dict[str, Any]) -> Sender:
    if config["SMTP_HOST"]:
        return SmtpSender(
            host=config["SMTP_HOST"],
            port=config["SMTP_PORT"],
            mail_from=config["MAIL_FROM"],
            username=config["SMTP_USERNAME"],
            password=config["SMTP_PASSWORD"],
            starttls=config["SMTP_STARTTLS"],
            timeout=config["SMTP_TIMEOUT_SECONDS"],
        )
    return FileSender(Path(config["MAIL_DIR"]))
