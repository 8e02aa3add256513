"""Reports over a date range: a daily series, each clinic, each coordinator, and the outcomes.

Every figure is about the requests created in the range [start, end) (UTC
days), spam left out, so the parts add up with `statistics.request_statistics`
over the same bounds. Medians are of whole seconds or hours, taken here so
PostgreSQL and the embedded SQLite give the same answers.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func

from quote_service.extensions import db
from quote_service.models import (
    ClinicQuote,
    Event,
    EventType,
    Invitation,
    Notification,
    NotificationStatus,
    Outcome,
    Provider,
    QuoteRequest,
    RequestStatus,
    User,
    utcnow,
    vocabulary,
)
from quote_service.services.users import actor_of

# The default range, and the longest one a report covers (one row a day).
DEFAULT_DAYS = 30
MAX_DAYS = 366


def day_range(
    created_after: datetime | None, created_before: datetime | None, now: datetime | None = None
) -> tuple[date, date]:
    """The first and last UTC day the reports cover.

    The last DEFAULT_DAYS days by default; a longer range is cut to its last
    MAX_DAYS days (the counts above them still cover the whole range).
    """
    last = (created_before - timedelta(microseconds=1)) if created_before else (now or utcnow())
    last_day = last.astimezone(UTC).date()
    if created_after is not None:
        first_day = created_after.astimezone(UTC).date()
    else:
        first_day = last_day - timedelta(days=DEFAULT_DAYS - 1)
    return max(first_day, last_day - timedelta(days=MAX_DAYS - 1)), last_day


def reports(
    created_after: datetime | None, created_before: datetime | None, now: datetime | None = None
) -> dict[str, Any]:
    first_day, last_day = day_range(created_after, created_before, now)
    start = datetime.combine(first_day, time.min, tzinfo=UTC)
    end = _end_of(last_day)
    if created_after is not None:
        start = max(start, created_after)
    if created_before is not None:
        end = min(end, created_before)
    in_range = [
        QuoteRequest.created_at >= start,
        QuoteRequest.created_at < end,
        QuoteRequest.status.not_in(vocabulary.NOT_REAL),
    ]
    return {
        "range": {"first_day": first_day, "last_day": last_day},
        "daily": _daily(first_day, last_day, in_range, end),
        "by_clinic": _by_clinic(in_range),
        "by_coordinator": _by_coordinator(in_range),
        "outcomes": _outcomes(in_range),
    }


def _end_of(day: date) -> datetime:
    """The first moment after `day` (UTC); the last moment Python holds after its last day."""
    if day == date.max:
        return datetime.max.replace(tzinfo=UTC)
    return datetime.combine(day + timedelta(days=1), time.min, tzinfo=UTC)


def _day_of(column: Any) -> Any:
    if db.session.get_bind().dialect.name == "postgresql":
        return func.date(func.timezone("UTC", column))
    return func.date(column)  # SQLite stores naive UTC


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _median(values: list[float], digits: int = 0) -> float | None:
    return round(float(statistics.median(values)), digits) if values else None


def _daily(
    first_day: date, last_day: date, in_range: list[ColumnElement[bool]], end: datetime
) -> list[dict]:
    days = (last_day - first_day).days + 1
    table: dict[date, dict[str, Any]] = {
        first_day + timedelta(days=n): {
            "by_status": dict.fromkeys(RequestStatus, 0),
            "acknowledgements_sent": 0,
            "waits": [],
        }
        for n in range(days)
    }
    day = _day_of(QuoteRequest.created_at)
    for when, status, count in db.session.execute(
        db.select(day, QuoteRequest.status, func.count(QuoteRequest.id))
        .where(*in_range)
        .group_by(day, QuoteRequest.status)
    ):
        table[_as_date(when)]["by_status"][status] = count
    # Each request's first acknowledgement: when it went, and how long after the request.
    first_sent = (
        db.select(
            Notification.quote_request_id.label("id"), func.min(Notification.sent_at).label("at")
        )
        .where(
            Notification.kind == "acknowledgement", Notification.status == NotificationStatus.SENT
        )
        .group_by(Notification.quote_request_id)
        .subquery()
    )
    for created, sent in db.session.execute(
        db.select(QuoteRequest.created_at, first_sent.c.at)
        .join(first_sent, first_sent.c.id == QuoteRequest.id)
        .where(*in_range)
    ):
        row = table[created.astimezone(UTC).date()]
        row["waits"].append((sent - created).total_seconds())
    sent_day = _day_of(Notification.sent_at)
    for when, count in db.session.execute(
        db.select(sent_day, func.count(Notification.id))
        .where(
            Notification.kind == "acknowledgement",
            Notification.status == NotificationStatus.SENT,
            Notification.sent_at >= datetime.combine(first_day, time.min, tzinfo=UTC),
            Notification.sent_at < end,
        )
        .group_by(sent_day)
    ):
        table[_as_date(when)]["acknowledgements_sent"] = count
    return [
        {
            "day": key,
            "by_status": row["by_status"],
            "acknowledgements_sent": row["acknowledgements_sent"],
            "median_seconds_to_acknowledgement": _median(row.pop("waits")),
        }
        for key, row in table.items()
    ]


def _by_clinic(in_range: list[ColumnElement[bool]]) -> list[dict[str, Any]]:
    """Per clinic invited: invitations, quotes, bookings, and how fast it answered."""
    figures: dict[int, dict[str, Any]] = defaultdict(
        lambda: {"invited": 0, "quoted": 0, "declined": 0, "booked": 0, "hours": []}
    )
    for provider_id, sent_at, answered_at, declined in db.session.execute(
        db.select(
            Invitation.provider_id,
            Invitation.sent_at,
            Invitation.answered_at,
            Invitation.decline_reason.is_not(None),
        )
        .join(QuoteRequest, QuoteRequest.id == Invitation.quote_request_id)
        .where(*in_range)
    ):
        clinic = figures[provider_id]
        clinic["invited"] += 1
        clinic["declined"] += int(bool(declined))
        if answered_at is not None:
            clinic["hours"].append((answered_at - sent_at).total_seconds() / 3600)
    for provider_id, count in db.session.execute(
        db.select(ClinicQuote.provider_id, func.count(ClinicQuote.id))
        .join(QuoteRequest, QuoteRequest.id == ClinicQuote.quote_request_id)
        .where(*in_range)
        .group_by(ClinicQuote.provider_id)
    ):
        figures[provider_id]["quoted"] = count
    for provider_id in _booked_clinics(in_range):
        figures[provider_id]["booked"] += 1
    providers = {
        p.id: p
        for p in db.session.execute(
            db.select(Provider).where(Provider.id.in_(list(figures)))
        ).scalars()
    }
    return [
        {
            "provider": {"id": pid, "slug": providers[pid].slug, "name": providers[pid].name},
            "invited": row["invited"],
            "quoted": row["quoted"],
            "declined": row["declined"],
            "booked": row["booked"],
            "median_response_hours": _median(row["hours"], 2),
        }
        for pid, row in sorted(figures.items(), key=lambda item: providers[item[0]].slug)
    ]


def _booked_clinics(in_range: list[ColumnElement[bool]]) -> list[int]:
    """For each request closed `booked`: the clinic of the quote the patient last chose.

    A booking no patient's interest points to is the request's routed clinic.
    """
    booked = list(
        db.session.execute(
            db.select(QuoteRequest.id, QuoteRequest.provider_id).where(
                *in_range,
                QuoteRequest.status == RequestStatus.CLOSED,
                QuoteRequest.outcome == Outcome.BOOKED,
            )
        )
    )
    chosen: dict[int, int] = {}
    for request_id, data in db.session.execute(
        db.select(Event.quote_request_id, Event.data)
        .where(
            Event.quote_request_id.in_([request_id for request_id, _ in booked]),
            Event.type == EventType.PATIENT_INTEREST,
        )
        .order_by(Event.id)
    ):
        chosen[request_id] = data["provider_id"]
    clinics = [chosen.get(request_id, provider_id) for request_id, provider_id in booked]
    return [clinic for clinic in clinics if clinic is not None]


def _by_coordinator(in_range: list[ColumnElement[bool]]) -> list[dict[str, Any]]:
    """Per user: requests assigned to them now, closed by them, and their time to review."""
    users = list(db.session.execute(db.select(User).order_by(User.email)).scalars())
    by_actor = {actor_of(user): user for user in users}
    assigned = dict(
        db.session.execute(
            db.select(QuoteRequest.assignee_id, func.count(QuoteRequest.id))
            .where(*in_range, QuoteRequest.assignee_id.is_not(None))
            .group_by(QuoteRequest.assignee_id)
        ).all()
    )
    closed: dict[int, int] = defaultdict(int)
    reviews: dict[int, list[float]] = defaultdict(list)
    seen_review: set[int] = set()
    for request_id, created, type_, actor, at in db.session.execute(
        db.select(QuoteRequest.id, QuoteRequest.created_at, Event.type, Event.actor, Event.at)
        .join(Event, Event.quote_request_id == QuoteRequest.id)
        .where(
            *in_range,
            Event.type.in_(
                [
                    vocabulary.status_event(RequestStatus.IN_REVIEW),
                    vocabulary.status_event(RequestStatus.CLOSED),
                ]
            ),
        )
        .order_by(Event.id)
    ):
        user = by_actor.get(actor)
        if user is None:
            continue
        if type_ == vocabulary.status_event(RequestStatus.CLOSED):
            closed[user.id] += 1
        elif request_id not in seen_review:  # a request's first review only
            seen_review.add(request_id)
            reviews[user.id].append((at - created).total_seconds())
    return [
        {
            "user": {"id": user.id, "email": user.email, "name": user.name},
            "assigned": assigned.get(user.id, 0),
            "closed": closed[user.id],
            "median_seconds_to_review": _median(reviews[user.id]),
        }
        for user in users
        if assigned.get(user.id) or closed[user.id] or reviews[user.id]
    ]


def _outcomes(in_range: list[ColumnElement[bool]]) -> dict[str, Any]:
    """How the closed requests ended: each outcome's count and its share of them."""
    counts = dict.fromkeys(Outcome, 0) | dict(
        db.session.execute(
            db.select(QuoteRequest.outcome, func.count(QuoteRequest.id))
            .where(*in_range, QuoteRequest.status == RequestStatus.CLOSED)
            .group_by(QuoteRequest.outcome)
        ).all()
    )
    counts.pop(None, None)  # closed before outcomes were recorded
    closed = sum(counts.values())
    return {
        "closed": closed,
        "by_outcome": {
            outcome: {"count": count, "rate": round(count / closed, 4) if closed else None}
            for outcome, count in counts.items()
        },
    }
