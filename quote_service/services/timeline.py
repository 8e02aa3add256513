"""The timeline: every event of a request is written here, in the caller's transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Insert, insert

from quote_service.extensions import db
from quote_service.models import Event, QuoteRequest, utcnow


def record(
    request: QuoteRequest | int,
    type_: str,
    actor: str,
    note: str | None = None,
    data: dict[str, Any] | None = None,
    at: datetime | None = None,
    bump: bool = False,
) -> Event:
    """Add one event (who, what, when, a note, data) to a request's timeline.

    `request` is the request, or only its id when the caller has no need to
    load it. `bump` marks a change of the request itself: its `version` and
    `updated_at` move too, so a coordinator acting on the copy read before is
    refused rather than silently overwriting it.
    """
    now = at or utcnow()
    event = Event(type=type_, actor=actor, note=note, data=data or None, at=now)
    if isinstance(request, QuoteRequest):
        if bump:
            request.version += 1
            request.updated_at = now
        event.quote_request = request
    else:
        assert not bump, "a change of the request needs the request"
        event.quote_request_id = request
    db.session.add(event)
    return event


def insertion(
    request_id: int,
    type_: str,
    actor: str,
    note: str | None = None,
    data: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> Insert:
    """`record` of a request known by its id, as an INSERT the caller sends with other writes."""
    return insert(Event).values(
        quote_request_id=request_id,
        type=type_,
        actor=actor,
        note=note,
        data=data or None,
        at=at or utcnow(),
    )
