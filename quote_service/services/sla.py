"""The first-response SLA: which requests have waited too long, and alerting on them."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import ColumnElement, and_
from sqlalchemy.exc import IntegrityError

from quote_service.extensions import db
from quote_service.models import Actor, EventType, Notification, QuoteRequest, utcnow
from quote_service.models.vocabulary import AWAITING_FIRST_RESPONSE
from quote_service.services import notifications, timeline

log = logging.getLogger(__name__)

ALERT_KIND = "sla_alert"
# One run alerts at most this many (oldest first); the next run takes the rest,
# so a large backlog cannot push a run past the task's time limit.
ALERT_BATCH_SIZE = 200


def first_response_hours() -> int:
    return current_app.config["SLA_FIRST_RESPONSE_HOURS"]


def breached(now: datetime | None = None) -> ColumnElement[bool]:
    """SQL condition: no first response yet, and created more than the SLA ago."""
    cutoff = (now or utcnow()) - timedelta(hours=first_response_hours())
    return and_(QuoteRequest.status.in_(AWAITING_FIRST_RESPONSE), QuoteRequest.created_at < cutoff)


# The share of the SLA after which a request is shown as due soon.
DUE_SOON_SHARE = 0.75


def due_soon(now: datetime | None = None) -> ColumnElement[bool]:
    """SQL condition: no first response yet, and due within the last quarter of the SLA."""
    now = now or utcnow()
    allowed = timedelta(hours=first_response_hours())
    return and_(
        QuoteRequest.status.in_(AWAITING_FIRST_RESPONSE),
        QuoteRequest.created_at >= now - allowed,
        QuoteRequest.created_at < now - allowed * DUE_SOON_SHARE,
    )


def clock(created_at: datetime, status: str, now: datetime | None = None) -> dict | None:
    """A request's first-response clock, or None once someone has responded.

    `state` is `ok`, `due_soon` (three quarters of the time used) or `breached`.
    """
    if status not in AWAITING_FIRST_RESPONSE:
        return None
    allowed = timedelta(hours=first_response_hours())
    used = ((now or utcnow()) - created_at) / allowed
    state = "breached" if used >= 1 else "due_soon" if used >= DUE_SOON_SHARE else "ok"
    return {
        "due_at": created_at + allowed,
        "left_seconds": (1 - used) * allowed.total_seconds(),
        "state": state,
    }


def alert_sla_breaches(now: datetime | None = None) -> int:
    """Queue one alert to the coordinators per breached request; return how many were queued."""
    alerted = (
        db.select(Notification.id)
        .where(Notification.quote_request_id == QuoteRequest.id, Notification.kind == ALERT_KIND)
        .exists()
    )
    requests = db.session.execute(
        db.select(QuoteRequest)
        .where(breached(now), ~alerted)
        .order_by(QuoteRequest.created_at, QuoteRequest.id)
        .limit(ALERT_BATCH_SIZE)
        # Two overlapping runs take different requests.
        .with_for_update(skip_locked=True)
    ).scalars()
    count = 0
    for request in list(requests):
        try:
            # A run that committed between our read and our lock alerted it already:
            # the notification's unique dedupe_key refuses the second one.
            with db.session.begin_nested():
                notification = notifications.prepare_sla_alert(request)
                timeline.record(
                    request.id,
                    EventType.SLA_BREACHED,
                    Actor.SYSTEM,
                    f"No first response within {first_response_hours()} hours.",
                    {"notification_id": notification.id, "kind": ALERT_KIND},
                )
        except IntegrityError:
            continue
        count += 1
    db.session.commit()
    if count:
        log.info("queued %d SLA alerts", count)
    return count
