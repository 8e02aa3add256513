"""Users and their API tokens."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

import email_validator
from flask import current_app

from quote_service.errors import Conflict, InvalidFields, NotFound, TokenExpired
from quote_service.extensions import db
from quote_service.models import ROLES, User, utcnow

TOKEN_PREFIX = "qs_"
# Writing last_used_at on every request would turn each read into a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_expiry(expires_days: int | None = None) -> datetime | None:
    """When a token made now expires: `expires_days` from now (0: never; None: the default)."""
    days = current_app.config["API_TOKEN_EXPIRES_DAYS"] if expires_days is None else expires_days
    if days < 0:
        raise InvalidFields({"expires_days": ["Give a number of days, 0 for never."]})
    return utcnow() + timedelta(days=days) if days else None


NAME_MAX_LENGTH = 120


class EmailTaken(Conflict):
    """A user with this email exists already."""

    code = "email_taken"


def create_user(
    email: str, role: str, expires_days: int | None = None, name: str | None = None
) -> tuple[User, str]:
    """Create a user; return it with its token, which is shown once and never stored."""
    expires_at = token_expiry(expires_days)
    name = " ".join(name.split()) if name else None
    if name is not None and (len(name) > NAME_MAX_LENGTH or not name.isprintable()):
        raise InvalidFields({"name": [f"Use at most {NAME_MAX_LENGTH} printable characters."]})
    if role not in ROLES:
        raise InvalidFields({"role": [f"Choose one of: {', '.join(ROLES)}."]})
    try:
        email = email_validator.validate_email(email, check_deliverability=False).normalized
    except email_validator.EmailNotValidError as error:
        raise InvalidFields({"email": [str(error)]}) from None
    if db.session.execute(db.select(User).where(User.email == email)).scalar_one_or_none():
        raise EmailTaken(f"A user with the email {email} exists already.")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    user = User(
        email=email,
        name=name,
        role=role,
        token_sha256=hash_token(token),
        created_at=utcnow(),
        expires_at=expires_at,
    )
    db.session.add(user)
    db.session.commit()
    return user, token


def revoke_user(email: str) -> User:
    user = db.session.execute(db.select(User).where(User.email == email)).scalar_one_or_none()
    if user is None:
        raise NotFound(f"No user with the email {email}.")
    if user.revoked_at is None:
        user.revoked_at = utcnow()
        db.session.commit()
    return user


def list_users() -> list[User]:
    return list(db.session.execute(db.select(User).order_by(User.id)).scalars())


def actor_of(user: User) -> str:
    """How the timeline names a user (the API's and the console's actor)."""
    return f"user:{user.email}"


def find_active(id_or_email: int | str) -> User | None:
    """The active user with this id or email (any case), or None."""
    if isinstance(id_or_email, int):
        user = db.session.get(User, id_or_email)
    else:
        user = db.session.execute(
            db.select(User).where(db.func.lower(User.email) == id_or_email.strip().lower())
        ).scalar_one_or_none()
    return user if user is not None and user.active else None


def authenticate(token: str) -> User | None:
    """The active user holding this token, or None; an expired one raises TokenExpired."""
    user = db.session.execute(
        db.select(User).where(User.token_sha256 == hash_token(token))
    ).scalar_one_or_none()
    if user is None or user.revoked_at is not None:
        return None
    now = utcnow()
    if user.is_expired(now):
        # Its own code, so a client knows to ask for a new token rather than retry.
        raise TokenExpired("This token has expired; ask an admin for a new one.")
    if user.last_used_at is None or now - user.last_used_at > LAST_USED_RESOLUTION:
        user.last_used_at = now
        db.session.commit()
    return user


def issue_demo_token(email: str = "demo.admin@quote-service.example") -> str:
    """A fresh token for the demo admin of `make run`, creating it on first use.

    Only the hash is kept, so each start replaces the token it printed last time.
    """
    user = db.session.execute(db.select(User).where(User.email == email)).scalar_one_or_none()
    if user is None:
        return create_user(email, "admin")[1]
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    user.token_sha256 = hash_token(token)
    user.revoked_at = None
    user.expires_at = token_expiry()
    db.session.commit()
    return token
