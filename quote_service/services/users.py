"""Users and their API tokens."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

import email_validator

from quote_service.errors import Conflict, InvalidFields, NotFound
from quote_service.extensions import db
from quote_service.models import ROLES, User, utcnow

TOKEN_PREFIX = "qs_"
# Writing last_used_at on every request would turn each read into a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)
DEMO_ADMIN_EMAIL = "demo.admin@quote-service.example"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_user(email: str, role: str) -> tuple[User, str]:
    """Create a user; return it with its token, which is shown once and never stored."""
    if role not in ROLES:
        raise InvalidFields({"role": [f"Choose one of: {', '.join(ROLES)}."]})
    try:
        email = email_validator.validate_email(email, check_deliverability=False).normalized
    except email_validator.EmailNotValidError as error:
        raise InvalidFields({"email": [str(error)]}) from None
    if db.session.execute(db.select(User).where(User.email == email)).scalar_one_or_none():
        raise Conflict(f"A user with the email {email} exists already.")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    user = User(email=email, role=role, token_sha256=hash_token(token), created_at=utcnow())
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


def authenticate(token: str) -> User | None:
    """The active user holding this token, or None."""
    user = db.session.execute(
        db.select(User).where(User.token_sha256 == hash_token(token))
    ).scalar_one_or_none()
    if user is None or user.revoked_at is not None:
        return None
    now = utcnow()
    if user.last_used_at is None or now - user.last_used_at > LAST_USED_RESOLUTION:
        user.last_used_at = now
        db.session.commit()
    return user


def issue_demo_token(email: str = DEMO_ADMIN_EMAIL) -> str:
    """A fresh token for the demo admin of `make run`, creating it on first use.

    Only the hash is kept, so each start replaces the token it printed last time.
    """
    user = db.session.execute(db.select(User).where(User.email == email)).scalar_one_or_none()
    if user is None:
        return create_user(email, "admin")[1]
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    user.token_sha256 = hash_token(token)
    user.revoked_at = None
    db.session.commit()
    return token
