"""What the console keeps between requests: failed sign-ins and who has which request open."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from quote_service.models.base import Base, UTCDateTime, utcnow


class SignInFailure(Base):
    """One failed console sign-in, counted per email to throttle guessing.

    Kept in the database (not in process memory) so every API process sees
    the same count; the email is stored as its keyed hash.
    """

    __tablename__ = "sign_in_failure"

    id: Mapped[int] = mapped_column(primary_key=True)
    email_hash: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_sign_in_failure_email_at", "email_hash", "at"),)


class Presence(Base):
    """A console user has a request open; `seen_at` is the page's last heartbeat."""

    __tablename__ = "presence"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    quote_request_id: Mapped[int] = mapped_column(ForeignKey("quote_request.id"))
    since: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)

    __table_args__ = (
        UniqueConstraint("user_id", "quote_request_id"),
        Index("ix_presence_request_seen", "quote_request_id", "seen_at"),
    )
