"""Console passwords: argon2 hashes, and sign-in throttled per email.

Only an argon2id hash (argon2-cffi's defaults) is stored. Failed sign-ins are
rows in the database, so every API process counts the same ones: after
`MAX_FAILURES` failures for one email within `FAILURE_WINDOW`, the next
sign-in is refused (429) whatever the password, until the oldest of those
failures leaves the window. Refusals themselves are not counted, so an
attacker who keeps trying cannot keep the owner out for longer than the window.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from datetime import timedelta

import argon2
import email_validator
from flask import current_app

from quote_service.crypto import keyring
from quote_service.errors import InvalidFields, NotFound, ServiceError, TooManyRequests
from quote_service.extensions import db
from quote_service.models import SignInFailure, User, utcnow

MIN_LENGTH = 12
MAX_LENGTH = 1024  # argon2 takes any length; this only bounds the work of one request
MAX_FAILURES = 5
FAILURE_WINDOW = timedelta(minutes=15)
WRONG = "This email and password do not match an account."

# argon2-cffi's defaults (RFC 9106's second recommendation) in service; its
# cheapest profile under TESTING only, so a test suite can sign in often.
_HASHERS = {
    False: argon2.PasswordHasher(),
    True: argon2.PasswordHasher.from_parameters(argon2.profiles.CHEAPEST),
}
# Verified when the email is unknown, so that both answers take as long.
_DUMMY_HASHES = {cheap: h.hash(secrets.token_urlsafe(16)) for cheap, h in _HASHERS.items()}


def _hasher() -> argon2.PasswordHasher:
    return _HASHERS[bool(current_app.config.get("TESTING"))]


class WrongCredentials(ServiceError):
    """One message for a wrong email and a wrong password: it does not say which."""

    status = 401
    code = "wrong_credentials"


def normalise_email(email: str) -> str:
    try:
        return email_validator.validate_email(email, check_deliverability=False).normalized
    except email_validator.EmailNotValidError:
        return email.strip()


def check_password_rules(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise InvalidFields({"password": [f"Use at least {MIN_LENGTH} characters."]})
    if len(password) > MAX_LENGTH:
        raise InvalidFields({"password": [f"Use at most {MAX_LENGTH} characters."]})


def set_password(email: str, password: str) -> User:
    """Give a user a console password (replacing any earlier one)."""
    check_password_rules(password)
    user = _user(normalise_email(email))
    if user is None:
        raise NotFound(f"No user with the email {email}.")
    user.password_hash = _hasher().hash(password)
    db.session.commit()
    return user


def issue_demo_password(email: str) -> str:
    """A fresh random password for the demo admin of `make run` (the user must exist)."""
    password = secrets.token_urlsafe(12)
    set_password(email, password)
    return password


def sign_in(email: str, password: str) -> User:
    """The user whose email and password these are; else WrongCredentials or TooManyRequests."""
    email = normalise_email(email)
    email_hash = keyring().lookup_hash(email)
    now = utcnow()
    recent = list(
        db.session.execute(
            db.select(SignInFailure.at)
            .where(SignInFailure.email_hash == email_hash, SignInFailure.at > now - FAILURE_WINDOW)
            .order_by(SignInFailure.at.desc())
            .limit(MAX_FAILURES)
        ).scalars()
    )
    if len(recent) >= MAX_FAILURES:
        free_at = recent[-1] + FAILURE_WINDOW
        retry_after = max(1, math.ceil((free_at - now).total_seconds()))
        raise TooManyRequests(
            "Too many failed sign-ins for this email; try again later.", retry_after
        )
    user = _user(email)
    if user is None or user.revoked_at is not None or user.password_hash is None:
        _verify(_DUMMY_HASHES[bool(current_app.config.get("TESTING"))], password)
        user = None
    elif not _verify(user.password_hash, password):
        user = None
    if user is None:
        db.session.add(SignInFailure(email_hash=email_hash, at=now))
        db.session.commit()
        raise WrongCredentials(WRONG)
    if _hasher().check_needs_rehash(user.password_hash):
        user.password_hash = _hasher().hash(password)
    # The owner got in: earlier failures were theirs, or a guesser's who failed.
    db.session.execute(db.delete(SignInFailure).where(SignInFailure.email_hash == email_hash))
    db.session.commit()
    return user


def session_id(user: User) -> str:
    """The id a console session carries: a new password ends every older session."""
    fingerprint = hashlib.sha256((user.password_hash or "").encode()).hexdigest()[:16]
    return f"{user.id}:{fingerprint}"


def user_of_session(value: str) -> User | None:
    """The active user a session id names, if the password has not changed since."""
    user_id = value.partition(":")[0]
    if not user_id.isascii() or not user_id.isdigit() or len(user_id) > 9:
        return None
    user = db.session.get(User, int(user_id))
    if user is None or user.revoked_at is not None or user.password_hash is None:
        return None
    if not secrets.compare_digest(session_id(user), value):
        return None
    return user


def _user(email: str) -> User | None:
    return db.session.execute(
        db.select(User).where(db.func.lower(User.email) == email.lower())
    ).scalar_one_or_none()


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher().verify(password_hash, password)
    except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
        return False
