"""The transactional outbox: work to hand to the workers, written with the data it is about."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from quote_service.models.base import Base, UTCDateTime, utcnow


class OutboxMessage(Base):
    """A unit of work for the workers.

    A row is done (`completed_at` set) only when its work has completed, not
    when it was published: the relay publishes rows whose `available_at` has
    passed and pushes `available_at` forward, so a message lost in the broker
    or in a killed worker is published again. The payload holds ids only.

    A task that starts on a row takes a lease on it: `holder` (one id per task
    run), `started_at`, and `available_at` pushed one `OUTBOX_LEASE_SECONDS`
    ahead and renewed while the work runs. A run that ends releases it; a run
    that dies leaves it to run out, and `failures` counts such ends, so a
    message that breaks every run is given up (`failed_at`, `last_error`: an
    exception type, never data) rather than published forever.
    """

    __tablename__ = "outbox_message"

    id: Mapped[int] = mapped_column(primary_key=True)
    topic: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    available_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    publish_count: Mapped[int] = mapped_column(default=0)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    holder: Mapped[str | None] = mapped_column(String(32))
    failures: Mapped[int] = mapped_column(default=0, server_default="0")
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (Index("ix_outbox_message_pending", "completed_at", "available_at"),)
