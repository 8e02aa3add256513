"""A patient's quote request and its timeline of events."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, Date, ForeignKey, Index, String, false
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from quote_service.addresses import domain_of, mailbox
from quote_service.crypto import keyring
from quote_service.folding import fold
from quote_service.models.base import Base, EncryptedText, UTCDateTime, utcnow
from quote_service.models.vocabulary import RequestStatus

if TYPE_CHECKING:
    from quote_service.models.provider import Provider
    from quote_service.models.user import User

# A coordinator's verdict on an urgent flag (see quote_service/services/safety.py).
SAFETY_VERDICTS = ("confirmed", "false_alarm")
# What a coordinator decided about a possible duplicate (null: not decided yet).
DUPLICATE_DECISIONS = ("merged", "kept_apart")


class QuoteRequest(Base):
    __tablename__ = "quote_request"

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(16), unique=True)
    status: Mapped[str] = mapped_column(String(20), default=RequestStatus.RECEIVED)

    full_name: Mapped[str] = mapped_column(String(200))
    # The name without accents or case, for the coordinators' search (set with full_name).
    name_folded: Mapped[str | None] = mapped_column(String(200))
    # Encrypted at rest; found by their keyed hashes (see quote_service.crypto).
    email: Mapped[str] = mapped_column(EncryptedText)
    email_hash: Mapped[str | None] = mapped_column(String(64))
    # The inbox (the address without its +tag), for the duplicate check.
    email_mailbox_hash: Mapped[str | None] = mapped_column(String(64))
    # The keyed hash of the address's domain: a search for "@example.org" finds it.
    email_domain_hash: Mapped[str | None] = mapped_column(String(64))
    phone: Mapped[str | None] = mapped_column(EncryptedText)
    phone_hash: Mapped[str | None] = mapped_column(String(64))
    country_of_residence: Mapped[str] = mapped_column(String(2))
    preferred_language: Mapped[str] = mapped_column(ForeignKey("language.code"))

    condition_slug: Mapped[str] = mapped_column(ForeignKey("condition.slug"))
    destination_code: Mapped[str] = mapped_column(ForeignKey("destination.code"))
    treatment_slug: Mapped[str] = mapped_column(ForeignKey("treatment.slug"))
    patient_age: Mapped[int | None]
    travel_from: Mapped[date | None] = mapped_column(Date)
    travel_to: Mapped[date | None] = mapped_column(Date)
    budget_eur: Mapped[int | None]
    message: Mapped[str | None] = mapped_column(EncryptedText)

    # The consent ledger: what exactly the patient agreed to, and when.
    consent_privacy: Mapped[bool]
    consent_marketing: Mapped[bool] = mapped_column(default=False)
    consent_version: Mapped[int]
    consent_language: Mapped[str] = mapped_column(String(8))
    consented_at: Mapped[datetime] = mapped_column(UTCDateTime)
    consent_withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set when the personal data was anonymised (erasure or retention).
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The patient's link (/p/<token>): the token is HMAC(key, salt)
    # (quote_service.crypto.Keyring.link_tokens); only the salt and its
    # SHA-256 are stored. None for requests made before the link existed,
    # until their first email to the patient gives them one.
    patient_token_salt: Mapped[str | None] = mapped_column(String(32))
    patient_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)

    provider_id: Mapped[int | None] = mapped_column(ForeignKey("provider.id"))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    # Urgent symptoms: flagged at intake by the urgent-sign rules, with the rules
    # that matched and their version (`safety`), then reviewed by a coordinator.
    urgent: Mapped[bool] = mapped_column(default=False, server_default=false())
    safety: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    safety_verdict: Mapped[str | None] = mapped_column(String(20))

    # A submission resembling an open request of the same inbox, condition and
    # destination (see quote_service/services/duplicates.py): stored on its own,
    # held back from routing and acknowledgement until a coordinator decides.
    possible_duplicate_of_id: Mapped[int | None] = mapped_column(
        ForeignKey("quote_request.id"), index=True
    )
    duplicate_decision: Mapped[str | None] = mapped_column(String(20))
    # Why a coordinator closed it (vocabulary.Outcome); null while it is not closed.
    outcome: Mapped[str | None] = mapped_column(String(20))

    # Bumped by every coordinator change; stale writers get 409/412 (the ETag).
    version: Mapped[int] = mapped_column(default=1, server_default="1")

    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    possible_duplicate_of: Mapped[QuoteRequest | None] = relationship(
        "QuoteRequest", remote_side="QuoteRequest.id"
    )
    provider: Mapped[Provider | None] = relationship("Provider")
    assignee: Mapped[User | None] = relationship("User")
    events: Mapped[list[Event]] = relationship(
        back_populates="quote_request", order_by="Event.id", cascade="all, delete-orphan"
    )

    # The queue lists newest first and pages on (created_at, id); each filter
    # gets an index that serves both the filter and that order.
    __table_args__ = (
        Index("ix_quote_request_created", "created_at", "id"),
        Index("ix_quote_request_status_created", "status", "created_at", "id"),
        Index("ix_quote_request_destination_created", "destination_code", "created_at", "id"),
        Index("ix_quote_request_condition_created", "condition_slug", "created_at", "id"),
        Index("ix_quote_request_provider_created", "provider_id", "created_at", "id"),
        Index("ix_quote_request_assignee_created", "assignee_id", "created_at", "id"),
        # The console's saved views count by assignee and status (new, mine,
        # unassigned): read from this index, not from the table.
        Index("ix_quote_request_assignee_status", "assignee_id", "status"),
        Index("ix_quote_request_email_hash", "email_hash", "created_at"),
        Index("ix_quote_request_mailbox_hash", "email_mailbox_hash", "created_at"),
        Index("ix_quote_request_phone_hash", "phone_hash"),
        Index("ix_quote_request_domain_hash", "email_domain_hash", "created_at"),
        Index("ix_quote_request_urgent_created", "urgent", "created_at", "id"),
    )

    @validates("email")
    def _hash_email(self, key: str, value: str) -> str:
        self.email_hash = keyring().lookup_hash(value) if value else None
        self.email_mailbox_hash = keyring().lookup_hash(mailbox(value)) if value else None
        self.email_domain_hash = keyring().lookup_hash(domain_of(value)) if value else None
        return value

    @validates("full_name")
    def _fold_name(self, key: str, value: str) -> str:
        self.name_folded = fold(value) if value else None
        return value

    @validates("phone")
    def _hash_phone(self, key: str, value: str | None) -> str | None:
        self.phone_hash = keyring().lookup_hash(value) if value else None
        return value


class Event(Base):
    """One entry of a request's timeline: who did what, when."""

    __tablename__ = "event"

    id: Mapped[int] = mapped_column(primary_key=True)
    quote_request_id: Mapped[int] = mapped_column(ForeignKey("quote_request.id"), index=True)
    type: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(120))
    note: Mapped[str | None] = mapped_column(EncryptedText)
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    quote_request: Mapped[QuoteRequest] = relationship(back_populates="events")
