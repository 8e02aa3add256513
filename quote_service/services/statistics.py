"""Statistics of quote requests: counts, median response times, SLA breaches."""

from __future__ import annotations

import statistics
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Subquery, func

from quote_service.extensions import db
from quote_service.models import (
    ClinicQuote,
    Condition,
    Destination,
    Event,
    Notification,
    NotificationStatus,
    QuoteRequest,
    RequestStatus,
    utcnow,
    vocabulary,
)
from quote_service.services import sla


def request_statistics(
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Counts, medians and breaches of requests created in [created_after, created_before)."""
    bounds: list[ColumnElement[bool]] = []
    if created_after is not None:
        bounds.append(QuoteRequest.created_at >= created_after)
    if created_before is not None:
        bounds.append(QuoteRequest.created_at < created_before)
    real = [*bounds, QuoteRequest.status.not_in(vocabulary.NOT_REAL)]

    by_status = dict.fromkeys(RequestStatus, 0) | _count_by(QuoteRequest.status, bounds)
    return {
        "counts": {
            "total": sum(n for status, n in by_status.items() if status not in vocabulary.NOT_REAL),
            "by_status": by_status,
            "by_destination": _catalog_keys(Destination.code, Destination)
            | _count_by(QuoteRequest.destination_code, real),
            "by_condition": _catalog_keys(Condition.slug, Condition)
            | _count_by(QuoteRequest.condition_slug, real),
        },
        "median_seconds": {
            "to_acknowledgement": _median_seconds_to(_first_acknowledgement(), real),
            "to_in_review": _median_seconds_to(_first_in_review(), real),
            "to_first_quote": _median_seconds_to(_first_quote(), real),
        },
        "sla": {
            "first_response_hours": sla.first_response_hours(),
            "breached": _count(*bounds, sla.breached(now)),
        },
        "safety": _safety_counts(real),
    }


def _safety_counts(where: list[ColumnElement[bool]]) -> dict[str, int]:
    """Urgent flags and their reviews: flagged, confirmed, false alarms, not yet reviewed."""
    verdict = QuoteRequest.safety_verdict
    flagged, confirmed, false_alarm = db.session.execute(
        db.select(
            func.count(QuoteRequest.id),
            func.count(QuoteRequest.id).filter(verdict == "confirmed"),
            func.count(QuoteRequest.id).filter(verdict == "false_alarm"),
        ).where(*where, QuoteRequest.urgent.is_(True))
    ).one()
    return {
        "flagged": flagged,
        "confirmed": confirmed,
        "false_alarm": false_alarm,
        "unreviewed": flagged - confirmed - false_alarm,
    }


def _count(*where: ColumnElement[bool]) -> int:
    return db.session.execute(db.select(func.count(QuoteRequest.id)).where(*where)).scalar_one()


def _count_by(column: Any, where: list[ColumnElement[bool]]) -> dict[str, int]:
    rows = db.session.execute(
        db.select(column, func.count(QuoteRequest.id)).where(*where).group_by(column)
    )
    return {key: count for key, count in rows}


def _catalog_keys(key: Any, model: type[Destination] | type[Condition]) -> dict[str, int]:
    """Every active catalog entry with a zero, in catalog order."""
    keys = db.session.execute(
        db.select(key).where(model.active).order_by(model.position, key)
    ).scalars()
    return dict.fromkeys(keys, 0)


def _first_acknowledgement() -> Subquery:
    return (
        db.select(
            Notification.quote_request_id.label("quote_request_id"),
            func.min(Notification.sent_at).label("first_at"),
        )
        .where(
            Notification.kind == "acknowledgement", Notification.status == NotificationStatus.SENT
        )
        .group_by(Notification.quote_request_id)
        .subquery()
    )


def _first_in_review() -> Subquery:
    return (
        db.select(
            Event.quote_request_id.label("quote_request_id"), func.min(Event.at).label("first_at")
        )
        .where(Event.type == vocabulary.status_event(RequestStatus.IN_REVIEW))
        .group_by(Event.quote_request_id)
        .subquery()
    )


def _first_quote() -> Subquery:
    return (
        db.select(
            ClinicQuote.quote_request_id.label("quote_request_id"),
            func.min(ClinicQuote.submitted_at).label("first_at"),
        )
        .group_by(ClinicQuote.quote_request_id)
        .subquery()
    )


def _median_seconds_to(first: Subquery, where: list[ColumnElement[bool]]) -> float | None:
    """Median of (first.first_at - created_at) over the requests that have one, or None."""
    joined = (
        db.select()
        .select_from(QuoteRequest)
        .join(first, first.c.quote_request_id == QuoteRequest.id)
        .where(*where)
    )
    if db.session.get_bind().dialect.name == "postgresql":
        seconds = func.extract("epoch", first.c.first_at - QuoteRequest.created_at)
        median = db.session.execute(
            joined.add_columns(func.percentile_cont(0.5).within_group(seconds))
        ).scalar_one()
        return None if median is None else float(median)
    # SQLite (the embedded default) has no percentile function: the median is taken here.
    rows = db.session.execute(joined.add_columns(QuoteRequest.created_at, first.c.first_at))
    durations = [(first_at - created).total_seconds() for created, first_at in rows]
    return float(statistics.median(durations)) if durations else None


def daily_counts(days: int = 30, now: datetime | None = None) -> list[dict[str, Any]]:
    """Requests created on each of the last `days` UTC days (today included), by status.

    Every day and every status is present, zeros included, oldest day first.
    """
    today = (now or utcnow()).astimezone(UTC).date()
    first = today - timedelta(days=days - 1)
    start = datetime.combine(first, time.min, tzinfo=UTC)
    if db.session.get_bind().dialect.name == "postgresql":
        day = func.date(func.timezone("UTC", QuoteRequest.created_at))
    else:
        day = func.date(QuoteRequest.created_at)  # SQLite stores naive UTC
    rows = db.session.execute(
        db.select(day, QuoteRequest.status, func.count(QuoteRequest.id))
        .where(QuoteRequest.created_at >= start)
        .group_by(day, QuoteRequest.status)
    )
    table = {first + timedelta(days=n): dict.fromkeys(RequestStatus, 0) for n in range(days)}
    for when, status, count in rows:
        key = when if isinstance(when, date) else date.fromisoformat(str(when))
        if key in table:
            table[key][status] = count
    return [{"day": key, "by_status": counts} for key, counts in table.items()]
