"""The catalog: what the service offers, and the texts every patient must see."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from quote_service.models.base import Base, UTCDateTime, utcnow

# Translated names are stored as {"en": "Stroke", "fr": "AVC", ...}.
Names = dict[str, str]


class Language(Base):
    __tablename__ = "language"

    code: Mapped[str] = mapped_column(String(8), primary_key=True)
    position: Mapped[int] = mapped_column(default=0)


destination_condition = Table(
    "destination_condition",
    Base.metadata,
    Column("destination_code", ForeignKey("destination.code"), primary_key=True),
    Column("condition_slug", ForeignKey("condition.slug"), primary_key=True),
)


class Destination(Base):
    __tablename__ = "destination"

    code: Mapped[str] = mapped_column(String(2), primary_key=True)
    names: Mapped[Names] = mapped_column(JSON)
    active: Mapped[bool] = mapped_column(default=True)
    position: Mapped[int] = mapped_column(default=0)

    conditions: Mapped[list[Condition]] = relationship(
        secondary=destination_condition, order_by="Condition.position"
    )


class Condition(Base):
    __tablename__ = "condition"

    slug: Mapped[str] = mapped_column(String(64), primary_key=True)
    names: Mapped[Names] = mapped_column(JSON)
    active: Mapped[bool] = mapped_column(default=True)
    position: Mapped[int] = mapped_column(default=0)


class Treatment(Base):
    __tablename__ = "treatment"

    slug: Mapped[str] = mapped_column(String(32), primary_key=True)
    names: Mapped[Names] = mapped_column(JSON)
    active: Mapped[bool] = mapped_column(default=True)
    position: Mapped[int] = mapped_column(default=0)


class Disclaimer(Base):
    """One version of one disclaimer in one language; old versions are never rewritten.

    The scope narrows where it applies: `destination_code` / `condition_slug`
    of None mean every destination / condition.
    """

    __tablename__ = "disclaimer"
    __table_args__ = (UniqueConstraint("key", "language", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64))
    version: Mapped[int]
    language: Mapped[str] = mapped_column(ForeignKey("language.code"))
    destination_code: Mapped[str | None] = mapped_column(ForeignKey("destination.code"))
    condition_slug: Mapped[str | None] = mapped_column(ForeignKey("condition.slug"))
    required: Mapped[bool] = mapped_column(default=True)
    # None: every message in scope; "quote": only emails that carry clinics' quotes.
    context: Mapped[str | None] = mapped_column(String(16))
    # A disclaimer dropped from the catalog is retired, never deleted: sent
    # messages keep pointing at the exact version they carried.
    active: Mapped[bool] = mapped_column(default=True)
    position: Mapped[int] = mapped_column(default=0)
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class QuoteItem(Base):
    """What a clinic's price can include or exclude (flights, anaesthetist, tests...)."""

    __tablename__ = "quote_item"

    slug: Mapped[str] = mapped_column(String(64), primary_key=True)
    names: Mapped[Names] = mapped_column(JSON)
    active: Mapped[bool] = mapped_column(default=True)
    position: Mapped[int] = mapped_column(default=0)


class ConsentText(Base):
    """The privacy consent a patient agrees to, versioned per language."""

    __tablename__ = "consent_text"
    __table_args__ = (UniqueConstraint("language", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int]
    language: Mapped[str] = mapped_column(ForeignKey("language.code"))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


Index("ix_disclaimer_lookup", Disclaimer.key, Disclaimer.language, Disclaimer.version)


# One row whose number changes with every write to a table the intake checks
# requests against (migration 0025's triggers bump it, whoever writes: `flask
# seed`, a migration, psql). Processes keep a snapshot of those tables and
# read only this number per request (services/catalog_snapshot.py).
catalog_version = Table(
    "catalog_version",
    Base.metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("version", BigInteger, nullable=False),
)
