"""Routing decisions: which clinic a request went to, and why."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from quote_service.models.base import Base, EncryptedText, UTCDateTime, utcnow


class RoutingDecision(Base):
    """One routing of one request, with every candidate considered.

    `candidates` lists each provider at the destination with `eligible`,
    `reasons` (why it was passed over or preferred), `load`, `weight` and
    `chosen`, so a coordinator can see why this clinic.
    """

    __tablename__ = "routing_decision"

    id: Mapped[int] = mapped_column(primary_key=True)
    quote_request_id: Mapped[int] = mapped_column(ForeignKey("quote_request.id"))
    outcome: Mapped[str] = mapped_column(String(20))  # routed | unroutable
    provider_id: Mapped[int | None] = mapped_column(ForeignKey("provider.id"))
    candidates: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    actor: Mapped[str] = mapped_column(String(120))
    note: Mapped[str | None] = mapped_column(EncryptedText)
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        Index("ix_routing_decision_request", "quote_request_id", "id"),
        # Daily capacity counts today's decisions per provider.
        Index("ix_routing_decision_provider_day", "provider_id", "decided_at"),
    )
