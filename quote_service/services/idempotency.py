"""Idempotency keys of the intake (IETF draft "The Idempotency-Key HTTP Header Field").

A client that sends a POST again with the same `Idempotency-Key` gets the
first answer again, and nothing is written twice. The key is claimed in a
short transaction of its own before the work starts, so a concurrent
duplicate sees it in flight; the answer is stored in the transaction that
does the work, so a request and its stored answer are committed together.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, insert, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from quote_service.errors import Conflict, ServiceError
from quote_service.extensions import db
from quote_service.models import IdempotencyKey, utcnow

log = logging.getLogger(__name__)

# The draft asks servers to keep keys at least a day, long enough for any client retry.
KEY_LIFETIME = timedelta(hours=24)
# An unanswered claim this old belongs to a request that died; another may take it over.
IN_FLIGHT_TIMEOUT = timedelta(seconds=60)
MAX_KEY_LENGTH = 255
IN_FLIGHT = "in_flight"
COMPLETED = "completed"
# Each failed round means another request changed the row meanwhile; a few settle it.
CLAIM_ATTEMPTS = 3
IN_FLIGHT_MESSAGE = _l(
    "A request with this Idempotency-Key is still being processed; retry shortly."
)


class InvalidIdempotencyKey(ServiceError):
    status = 400
    code = "invalid_idempotency_key"


class IdempotencyKeyInFlight(Conflict):
    code = "idempotency_key_in_flight"


class IdempotencyKeyReused(ServiceError):
    status = 422
    code = "idempotency_key_reused"


@dataclass(frozen=True)
class Claim:
    """A key this request owns until it records an answer or releases it."""

    key: str
    claimed_at: datetime


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: dict[str, Any] | None
    headers: dict[str, str]


def check_key(value: str) -> str:
    """Return the header's value if it is a usable key: 1-255 printable ASCII characters."""
    if not 1 <= len(value) <= MAX_KEY_LENGTH or not all(" " <= char <= "~" for char in value):
        raise InvalidIdempotencyKey(
            _l(
                "Idempotency-Key must be 1 to %(maximum)s printable ASCII characters.",
                maximum=MAX_KEY_LENGTH,
            )
        )
    return value


def fingerprint(content_type: str, body: bytes) -> str:
    """SHA-256 of the content type and the raw body: what "the same request" means."""
    # Header values reach WSGI as latin-1, so this gives back the bytes that were sent.
    return hashlib.sha256(content_type.encode("latin-1") + b"\n" + body).hexdigest()


def claim(key: str, fingerprint: str, now: datetime | None = None) -> Claim | StoredResponse:
    """Claim `key` for a new request (commits), or return the answer it already got.

    Raises IdempotencyKeyReused when the key came with another body, and
    IdempotencyKeyInFlight while the first request with it is still running.
    """
    now = now or utcnow()
    for _ in range(CLAIM_ATTEMPTS):
        if _insert(key, fingerprint, now):
            return Claim(key, now)
        row = db.session.execute(
            db.select(IdempotencyKey).where(IdempotencyKey.key == key)
        ).scalar_one_or_none()
        if row is None:
            continue  # released or purged since our insert failed: claim it again
        if row.expires_at <= now:
            _delete(row, now)
            continue
        if row.fingerprint != fingerprint:
            raise IdempotencyKeyReused(
                _l("This Idempotency-Key was used with another request body; use a new key.")
            )
        if row.state == COMPLETED:
            return StoredResponse(
                row.response_status or 200, row.response_body, dict(row.response_headers or {})
            )
        if row.created_at > now - IN_FLIGHT_TIMEOUT:
            break
        if _take_over(row, now):
            return Claim(key, now)
    raise IdempotencyKeyInFlight(IN_FLIGHT_MESSAGE)


def _insert(key: str, fingerprint: str, now: datetime) -> bool:
    try:
        db.session.execute(
            insert(IdempotencyKey).values(
                key=key,
                fingerprint=fingerprint,
                state=IN_FLIGHT,
                created_at=now,
                expires_at=now + KEY_LIFETIME,
            )
        )
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return False
    return True


def _delete(row: IdempotencyKey, now: datetime) -> None:
    db.session.execute(
        delete(IdempotencyKey).where(IdempotencyKey.id == row.id, IdempotencyKey.expires_at <= now)
    )
    db.session.commit()


def _take_over(row: IdempotencyKey, now: datetime) -> bool:
    # Compare-and-set on the old claim time: of two requests taking over, one wins.
    result = db.session.execute(
        update(IdempotencyKey)
        .where(
            IdempotencyKey.id == row.id,
            IdempotencyKey.state == IN_FLIGHT,
            IdempotencyKey.created_at == row.created_at,
        )
        .values(created_at=now, expires_at=now + KEY_LIFETIME)
    )
    db.session.commit()
    return result.rowcount == 1


def record(claim: Claim, response: StoredResponse) -> None:
    """Store the answer on a claimed key, in the caller's transaction (the caller commits).

    Raises IdempotencyKeyInFlight if another request took the claim over in
    the meantime; the caller's work is then rolled back, so it is done once.
    """
    result = db.session.execute(
        update(IdempotencyKey)
        .where(
            IdempotencyKey.key == claim.key,
            IdempotencyKey.state == IN_FLIGHT,
            IdempotencyKey.created_at == claim.claimed_at,
        )
        .values(
            state=COMPLETED,
            response_status=response.status,
            response_body=response.body,
            response_headers=response.headers,
        )
    )
    if result.rowcount != 1:
        raise IdempotencyKeyInFlight(IN_FLIGHT_MESSAGE)


def release(claim: Claim) -> None:
    """Forget a claim whose request failed, so the client may retry with the same key."""
    try:
        db.session.rollback()
        db.session.execute(
            delete(IdempotencyKey).where(
                IdempotencyKey.key == claim.key,
                IdempotencyKey.state == IN_FLIGHT,
                IdempotencyKey.created_at == claim.claimed_at,
            )
        )
        db.session.commit()
    except SQLAlchemyError as error:
        # The request's own error matters more; the claim is abandoned after the timeout.
        db.session.rollback()
        log.warning("could not release an idempotency key: %s", type(error).__name__)


def purge_expired(now: datetime | None = None) -> int:
    """Delete keys past their lifetime; return how many went."""
    now = now or utcnow()
    result = db.session.execute(delete(IdempotencyKey).where(IdempotencyKey.expires_at <= now))
    db.session.commit()
    return result.rowcount
