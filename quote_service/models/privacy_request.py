"""A patient's request, made on their link, for a copy of their data or its erasure."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from quote_service.models.base import Base, UTCDateTime, utcnow
from quote_service.models.vocabulary import PrivacyRequestStatus

PRIVACY_REQUEST_KINDS = ("copy", "erasure")


class PrivacyRequest(Base):
    """One data-subject request, due one month after it was made (GDPR art. 12(3))."""

    __tablename__ = "privacy_request"

    id: Mapped[int] = mapped_column(primary_key=True)
    quote_request_id: Mapped[int] = mapped_column(ForeignKey("quote_request.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=PrivacyRequestStatus.OPEN)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    fulfilled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    fulfilled_by: Mapped[str | None] = mapped_column(String(120))

    # Admins list them by status, soonest due first.
    __table_args__ = (Index("ix_privacy_request_status_due", "status", "due_at"),)
