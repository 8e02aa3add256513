"""Providers: the clinics requests are routed to."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column, ForeignKey, String, Table
from sqlalchemy.orm import Mapped, mapped_column, relationship

from quote_service.models.base import Base, UTCDateTime, utcnow
from quote_service.models.catalog import Condition

provider_condition = Table(
    "provider_condition",
    Base.metadata,
    Column("provider_id", ForeignKey("provider.id"), primary_key=True),
    Column("condition_slug", ForeignKey("condition.slug"), primary_key=True),
)


class Provider(Base):
    __tablename__ = "provider"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    destination_code: Mapped[str] = mapped_column(ForeignKey("destination.code"), index=True)
    languages: Mapped[list[str]] = mapped_column(JSON, default=list)
    contact_email: Mapped[str] = mapped_column(String(320))
    # Where the clinic is, as patients are told it ("Ghent"); None when not known.
    city: Mapped[str | None] = mapped_column(String(100))
    daily_capacity: Mapped[int] = mapped_column(default=10)
    weight: Mapped[int] = mapped_column(default=1)
    active: Mapped[bool] = mapped_column(default=True)
    # Demo catalog entries are marked so they are never mistaken for real clinics.
    sample: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    conditions: Mapped[list[Condition]] = relationship(
        secondary=provider_condition, order_by="Condition.position"
    )
