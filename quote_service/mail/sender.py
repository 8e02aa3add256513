"""Senders: SMTP in deployments, `.eml` files under instance/mail/ for `make run`."""

from __future__ import annotations

import hashlib
import os
import re
import smtplib
import ssl
from dataclasses import dataclass
from email.utils import parseaddr
from pathlib import Path
from typing import Any, Protocol


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
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.username:
                    smtp.login(self.username, self.password)
                smtp.sendmail(envelope_from, [recipient], raw)
        except smtplib.SMTPRecipientsRefused as error:
            code, reply = next(iter(error.recipients.values()))
            raise classify(code, reply) from None
        except smtplib.SMTPResponseException as error:
            raise classify(error.smtp_code, error.smtp_error) from None
        except (smtplib.SMTPException, OSError) as error:
            # Refused or dropped connections, timeouts: the server may come back.
            raise TransientSendError(f"connection: {type(error).__name__}: {error}") from None


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
