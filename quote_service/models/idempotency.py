"""Idempotency keys of POST /quote-requests: a retried request gets the first answer."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from quote_service.models.base import Base, UTCDateTime, utcnow


class IdempotencyKey(Base):
    """One `Idempotency-Key` seen at the intake, with the response it got.

    `fingerprint` is a SHA-256 of the request body: the same key with another
    body is refused. A row is written with its response (`completed`), in the
    transaction of the request it answers; an `in_flight` row is a claim of an
    earlier release, which wrote its claims as rows before the work.
    """

    __tablename__ = "idempotency_key"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(255), unique=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default="in_flight")
    response_status: Mapped[int | None]
    response_body: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    response_headers: Mapped[dict[str, str] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
