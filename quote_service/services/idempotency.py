"""Idempotency keys of the intake (IETF draft "The Idempotency-Key HTTP Header Field").

A client that sends a POST again with the same `Idempotency-Key` gets the
first answer again, and nothing is written twice. The key is claimed in the
transaction that does the work (an advisory lock on PostgreSQL, so a
concurrent duplicate sees it in flight) and its answer is stored in that
transaction too: a request and its stored answer are committed together, and
one COMMIT serves both.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import Insert, Result, and_, delete, func, literal, or_, select, true
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

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
# The class of the claims' advisory locks (two-key form): apart from every other lock.
LOCK_CLASS = int.from_bytes(b"IdmK", "big")
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
    fingerprint: str
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
    """Claim `key` in the caller's transaction, or return the answer it already got.

    Raises IdempotencyKeyReused when the key came with another body, and
    IdempotencyKeyInFlight while the first request with it is still running.
    One statement: on PostgreSQL it takes the key's transaction-scoped advisory
    lock (a concurrent request with the key finds it taken) and reads the key's
    row. No row is written until `record` stores the answer with the work, so a
    request that fails leaves nothing behind: its rollback frees the key.
    """
    now = now or utcnow()
    taken, row = _lock_and_read(key)
    if row is not None and row.expires_at > now:
        if row.fingerprint != fingerprint:
            raise IdempotencyKeyReused(
                _l("This Idempotency-Key was used with another request body; use a new key.")
            )
        if row.state == COMPLETED:
            return StoredResponse(
                row.response_status or 200, row.response_body, dict(row.response_headers or {})
            )
        # An in-flight row is an earlier release's claim: held until it is abandoned.
        if row.created_at > now - IN_FLIGHT_TIMEOUT:
            raise IdempotencyKeyInFlight(IN_FLIGHT_MESSAGE)
    if not taken:
        raise IdempotencyKeyInFlight(IN_FLIGHT_MESSAGE)
    return Claim(key, fingerprint, now)


def _lock_and_read(key: str) -> tuple[bool, IdempotencyKey | None]:
    """Whether this transaction holds the key's lock, and the key's row if it has one.

    SQLite runs one writer at a time and has no such lock: there two requests
    with one key may both run, and `record` lets only the first commit.
    """
    if db.session.get_bind().dialect.name == "postgresql":
        digest = hashlib.sha256(key.encode()).digest()
        lock = func.pg_try_advisory_xact_lock(
            LOCK_CLASS, int.from_bytes(digest[:4], "big", signed=True)
        )
    else:
        lock = true()
    one = select(literal(1).label("one")).subquery()
    statement = select(lock, IdempotencyKey).select_from(
        one.outerjoin(IdempotencyKey, IdempotencyKey.key == key)
    )
    taken, row = db.session.execute(statement).one()
    return bool(taken), row


@dataclass(frozen=True)
class Recording:
    """A claim's answer as a write the caller sends with its own (see `recording`)."""

    write: Insert

    def confirm(self, result: Result[Any]) -> None:
        """Raise IdempotencyKeyInFlight unless the write's RETURNING shows the answer stored."""
        if result.first() is None:
            raise IdempotencyKeyInFlight(IN_FLIGHT_MESSAGE)


def record(claim: Claim, response: StoredResponse) -> None:
    """Store the answer on a claimed key, in the caller's transaction (the caller commits).

    Replaces an expired row, or an earlier release's abandoned claim. Raises
    IdempotencyKeyInFlight when a request with the key committed since the
    claim was read (a race only SQLite, or a claim read just as the first
    committed, can lose); the caller's work is then rolled back, so it is done once.
    """
    answer = recording(claim, response)
    answer.confirm(db.session.execute(answer.write))


def recording(claim: Claim, response: StoredResponse) -> Recording:
    """`record` as a write to send with the work's own; `confirm` its result before committing."""
    values = {
        "fingerprint": claim.fingerprint,
        "state": COMPLETED,
        "response_status": response.status,
        "response_body": response.body,
        "response_headers": response.headers,
        "created_at": claim.claimed_at,
        "expires_at": claim.claimed_at + KEY_LIFETIME,
    }
    existing = IdempotencyKey.__table__.c
    return Recording(
        _dialect_insert()(IdempotencyKey)
        .values(key=claim.key, **values)
        .on_conflict_do_update(
            index_elements=[IdempotencyKey.key],
            set_=values,
            where=or_(
                existing.expires_at <= claim.claimed_at,
                and_(
                    existing.state == IN_FLIGHT,
                    existing.created_at <= claim.claimed_at - IN_FLIGHT_TIMEOUT,
                ),
            ),
        )
        .returning(IdempotencyKey.id)
    )


def _dialect_insert() -> Any:
    """The INSERT of the session's database, the one with ON CONFLICT."""
    if db.session.get_bind().dialect.name == "postgresql":
        return postgresql.insert
    return sqlite.insert


def release(claim: Claim) -> None:
    """Forget a claim whose request failed, so the client may retry with the same key."""
    # The claim is the transaction's lock and nothing written: the rollback ends both.
    try:
        db.session.rollback()
    except SQLAlchemyError as error:
        # The request's own error matters more; the connection is discarded with it.
        log.warning("could not release an idempotency key: %s", type(error).__name__)


def purge_expired(now: datetime | None = None) -> int:
    """Delete keys past their lifetime; return how many went."""
    now = now or utcnow()
    result = db.session.execute(delete(IdempotencyKey).where(IdempotencyKey.expires_at <= now))
    db.session.commit()
    return result.rowcount
