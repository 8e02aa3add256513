"""Presence: which console users have a request open right now.

An open detail page beats (an htmx poll) every third of
`CONSOLE_PRESENCE_SECONDS`; a user counts as viewing while their last beat is
younger than that, so a closed page drops out within that span (45 s by
default). Rows live in the database, so every API process sees them, with or
without Redis.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy.exc import IntegrityError

from quote_service.extensions import db
from quote_service.models import Presence, User, utcnow

# Rows this much older than the window are deleted by later beats.
KEEP = timedelta(hours=1)


def window() -> timedelta:
    return timedelta(seconds=current_app.config["CONSOLE_PRESENCE_SECONDS"])


def heartbeat(user_id: int, quote_request_id: int) -> None:
    """Record that the user has the request open now; `since` restarts after a lapse."""
    now = utcnow()
    for _ in range(2):
        row = db.session.execute(
            db.select(Presence).where(
                Presence.user_id == user_id, Presence.quote_request_id == quote_request_id
            )
        ).scalar_one_or_none()
        if row is None:
            db.session.add(
                Presence(user_id=user_id, quote_request_id=quote_request_id, since=now, seen_at=now)
            )
        else:
            if row.seen_at < now - window():
                row.since = now
            row.seen_at = now
        try:
            db.session.commit()
            break
        except IntegrityError:
            # The same user's other tab inserted it first: update that row instead.
            db.session.rollback()
    db.session.execute(db.delete(Presence).where(Presence.seen_at < now - window() - KEEP))
    db.session.commit()


def leave(user_id: int, quote_request_id: int) -> None:
    """The page was closed: stop counting the user at once."""
    db.session.execute(
        db.delete(Presence).where(
            Presence.user_id == user_id, Presence.quote_request_id == quote_request_id
        )
    )
    db.session.commit()


def viewers(
    quote_request_ids: Iterable[int], now: datetime | None = None
) -> dict[int, list[dict[str, Any]]]:
    """Per request id, who has it open: `[{"user": email, "since": time}]`, earliest first."""
    ids = list(quote_request_ids)
    found: dict[int, list[dict[str, Any]]] = {id_: [] for id_ in ids}
    if not ids:
        return found
    cutoff = (now or utcnow()) - window()
    rows = db.session.execute(
        db.select(Presence.quote_request_id, User.email, Presence.since)
        .join(User, User.id == Presence.user_id)
        .where(Presence.quote_request_id.in_(ids), Presence.seen_at >= cutoff)
        .order_by(Presence.since, User.email)
    )
    for request_id, email, since in rows:
        found[request_id].append({"user": email, "since": since})
    return found
