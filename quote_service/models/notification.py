"""Notifications: every email the service sends, recorded once."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, validates

from quote_service.addresses import mailbox
from quote_service.crypto import keyring
from quote_service.models.base import Base, EncryptedText, UTCDateTime, utcnow
from quote_service.models.vocabulary import NotificationStatus

NOTIFICATION_KINDS = (
    "acknowledgement",
    # The invitation to quote, one per invited clinic (the first round's provider email).
    "provider",
    "invitation_reminder",
    "quotes",
    "unroutable_alert",
    "sla_alert",
    "urgent_alert",
    "no_quotes_alert",
    "interest_alert",
    # A patient asked, on their link, for a copy of their data or its erasure.
    "privacy_request_alert",
    "alert_digest",
    # To a coordinator someone else assigned a request to (reference only).
    "assignment_notice",
    # To a clinic a reroute took a request from: withdrawn, delete what you got (reference only).
    "withdrawal_notice",
)


class Notification(Base):
    """One email, built and recorded before it is sent.

    `dedupe_key` is unique: the automatic acknowledgement of a request can
    exist only once, whatever runs twice. The rendered message (`mime`) is
    kept so a retry sends the same bytes with the same Message-ID.
    """

    __tablename__ = "notification"

    id: Mapped[int] = mapped_column(primary_key=True)
    # None only for an alert digest, which names many requests.
    quote_request_id: Mapped[int | None] = mapped_column(ForeignKey("quote_request.id"))
    kind: Mapped[str] = mapped_column(String(32))
    dedupe_key: Mapped[str] = mapped_column(String(120), unique=True)
    recipient: Mapped[str] = mapped_column(EncryptedText)
    recipient_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    # The same for the inbox (the address without its +tag), for the daily cap.
    recipient_mailbox_hash: Mapped[str | None] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(20), default=NotificationStatus.PENDING)
    subject: Mapped[str] = mapped_column(String(300))
    message_id: Mapped[str] = mapped_column(String(250))
    body_sha256: Mapped[str] = mapped_column(String(64))
    # The rendered message, kept for retries; encrypted, and dropped after
    # MAIL_BODY_RETENTION_DAYS or on erasure.
    mime: Mapped[str | None] = mapped_column(EncryptedText)
    disclaimers: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(EncryptedText)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        Index("ix_notification_request", "quote_request_id", "id"),
        Index("ix_notification_recipient_mailbox", "recipient_mailbox_hash", "created_at"),
    )

    @validates("recipient")
    def _hash_recipient(self, key: str, value: str) -> str:
        self.recipient_hash = keyring().lookup_hash(value) if value else None
        self.recipient_mailbox_hash = keyring().lookup_hash(mailbox(value)) if value else None
        return value
