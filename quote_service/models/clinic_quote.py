"""Clinic quotes: the invitations a request sends to clinics, and the quotes they answer with."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from sqlalchemy import JSON, Date, ForeignKey, Index, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from quote_service.models.base import Base, EncryptedText, UTCDateTime, utcnow
from quote_service.models.vocabulary import InvitationStatus, QuoteStatus

if TYPE_CHECKING:
    from quote_service.models.provider import Provider

# Invitations: open -> quoted | declined | expired | withdrawn; quoted may be
# withdrawn too (the request ended). Only `open` and `quoted` ones accept answers.
# Quotes: submitted -> sent (to the patient); submitted | sent -> withdrawn.
# (vocabulary.InvitationStatus and QuoteStatus name them.)
DECLINE_REASONS = ("cannot-treat", "needs-records", "no-capacity", "other")
EVIDENCE_LEVELS = ("approved", "clinical-trial", "experimental")


class Invitation(Base):
    """One clinic asked to quote for one request, until `respond_by`.

    The clinic's link carries a secret token; only its SHA-256 and the salt it
    was derived from are stored, so a database dump opens no invitation.
    """

    __tablename__ = "invitation"

    id: Mapped[int] = mapped_column(primary_key=True)
    quote_request_id: Mapped[int] = mapped_column(ForeignKey("quote_request.id"))
    provider_id: Mapped[int] = mapped_column(ForeignKey("provider.id"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The token is HMAC(key, salt) (quote_service.crypto.Keyring.link_tokens).
    token_salt: Mapped[str] = mapped_column(String(32))
    # 1 is the clinic routing ranked first (the request's provider).
    rank: Mapped[int]
    status: Mapped[str] = mapped_column(String(20), default=InvitationStatus.OPEN)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    respond_by: Mapped[datetime] = mapped_column(UTCDateTime)
    # Half way to respond_by: one reminder if still unanswered.
    remind_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decline_reason: Mapped[str | None] = mapped_column(String(32))
    decline_note: Mapped[str | None] = mapped_column(EncryptedText)

    provider: Mapped[Provider] = relationship("Provider")

    __table_args__ = (
        UniqueConstraint("quote_request_id", "provider_id"),
        # The deadline sweep reads open invitations by their deadline.
        Index("ix_invitation_status_respond_by", "status", "respond_by"),
        Index("ix_invitation_status_remind_at", "status", "remind_at"),
        Index("ix_invitation_provider_sent", "provider_id", "sent_at"),
    )


class ClinicQuote(Base):
    """A clinic's structured quote; one per invitation, replaced until it is sent."""

    __tablename__ = "clinic_quote"

    id: Mapped[int] = mapped_column(primary_key=True)
    invitation_id: Mapped[int] = mapped_column(ForeignKey("invitation.id"), unique=True)
    quote_request_id: Mapped[int] = mapped_column(ForeignKey("quote_request.id"), index=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("provider.id"))
    status: Mapped[str] = mapped_column(String(20), default=QuoteStatus.SUBMITTED)
    price_min: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    # None: a fixed price (price_min).
    price_max: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    currency: Mapped[str] = mapped_column(String(3))
    includes: Mapped[list[str]] = mapped_column(JSON, default=list)
    excludes: Mapped[list[str]] = mapped_column(JSON, default=list)
    valid_until: Mapped[date] = mapped_column(Date)
    earliest_start: Mapped[date | None] = mapped_column(Date)
    doctor: Mapped[str | None] = mapped_column(EncryptedText)
    evidence: Mapped[str] = mapped_column(String(20))
    trial_id: Mapped[str | None] = mapped_column(String(32))
    # The clinic's free text may describe the patient's case: encrypted like the message.
    notes: Mapped[str | None] = mapped_column(EncryptedText)
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    provider: Mapped[Provider] = relationship("Provider")
