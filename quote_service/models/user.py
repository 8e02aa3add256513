"""Coordinators and admins, who reach the queue with a bearer token or the console."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from quote_service.models.base import Base, UTCDateTime, utcnow

ROLES = ("coordinator", "admin")


class User(Base):
    """A person working the queue. Only a SHA-256 of the token is stored.

    Tokens are 256-bit random strings, so a plain hash is enough: there is no
    dictionary to guess from, and a lookup by hash stays one index probe.
    """

    __tablename__ = "user_account"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    # How the queue shows the person (`users create --name`); None: shown by email.
    name: Mapped[str | None] = mapped_column(String(120))
    role: Mapped[str] = mapped_column(String(20))
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The console password as an argon2 hash (argon2-cffi); None: no console sign-in.
    password_hash: Mapped[str | None] = mapped_column(String(200))
    # None: the token never expires (an admin chose `--expires-days 0`).
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def is_expired(self, now: datetime | None = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or utcnow())

    @property
    def active(self) -> bool:
        return self.revoked_at is None and not self.is_expired()

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"
