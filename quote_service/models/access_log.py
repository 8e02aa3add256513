"""The audit of reads: who opened which request, or exported whose data, and when."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from quote_service.models.base import Base, UTCDateTime, utcnow


class AccessLog(Base):
    __tablename__ = "access_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    actor: Mapped[str] = mapped_column(String(120))
    # read_detail | export | erase | export_queue
    action: Mapped[str] = mapped_column(String(32))
    quote_request_id: Mapped[int | None] = mapped_column(ForeignKey("quote_request.id"))
    # For exports and erasures by email: the keyed hash, never the address.
    subject_hash: Mapped[str | None] = mapped_column(String(64))
    # What else says what was read: the filters of a queue export.
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        Index("ix_access_log_at", "at", "id"),
        Index("ix_access_log_request", "quote_request_id"),
    )
