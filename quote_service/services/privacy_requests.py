"""Data-subject requests a patient makes on their link: a copy of their data, or its erasure.

Each is recorded with its due date, one calendar month later (GDPR art.
12(3)), and the coordinators are alerted. An admin fulfils it with the
existing export or erasure of the person (services/privacy.py), which marks
the person's open requests of that kind fulfilled.
"""

from __future__ import annotations

import calendar
from datetime import datetime

from quote_service.extensions import db
from quote_service.models import (
    Actor,
    EventType,
    PrivacyRequest,
    PrivacyRequestStatus,
    QuoteRequest,
    utcnow,
)
from quote_service.services import notifications, timeline

# Which fulfilment answers which kind.
FULFILLED_BY = {"export": "copy", "erase": "erasure"}


def one_month_after(moment: datetime) -> datetime:
    """The same day and time a calendar month later; the month's last day when it is shorter."""
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def record(request: QuoteRequest, kind: str) -> tuple[PrivacyRequest, bool]:
    """Record a patient's request of this kind and alert the coordinators; commits.

    Asking again while one of the same kind is open changes nothing: the
    open one (and its due date) is returned, with False.
    """
    existing = db.session.execute(
        db.select(PrivacyRequest).where(
            PrivacyRequest.quote_request_id == request.id,
            PrivacyRequest.kind == kind,
            PrivacyRequest.status == PrivacyRequestStatus.OPEN,
        )
    ).scalar_one_or_none()
    if existing is not None:
        db.session.commit()  # ends the transaction that locked the request
        return existing, False
    now = utcnow()
    privacy_request = PrivacyRequest(
        quote_request_id=request.id,
        kind=kind,
        status=PrivacyRequestStatus.OPEN,
        requested_at=now,
        due_at=one_month_after(now),
    )
    db.session.add(privacy_request)
    db.session.flush()
    timeline.record(
        request.id,
        EventType.PRIVACY_REQUESTED,
        Actor.PATIENT,
        data={
            "privacy_request_id": privacy_request.id,
            "kind": kind,
            "due_at": privacy_request.due_at.isoformat(),
        },
        at=now,
    )
    notifications.prepare_privacy_request_alert(request, privacy_request)
    db.session.commit()
    return privacy_request, True


def fulfil(requests: list[QuoteRequest], action: str, actor: str) -> int:
    """An admin exported or erased a person: their open requests of that kind are done.

    The caller commits; returns how many were marked fulfilled.
    """
    kind = FULFILLED_BY[action]
    ids = [r.id for r in requests]
    if not ids:
        return 0
    now = utcnow()
    open_ones = list(
        db.session.execute(
            db.select(PrivacyRequest).where(
                PrivacyRequest.quote_request_id.in_(ids),
                PrivacyRequest.kind == kind,
                PrivacyRequest.status == PrivacyRequestStatus.OPEN,
            )
        ).scalars()
    )
    for privacy_request in open_ones:
        privacy_request.status = PrivacyRequestStatus.FULFILLED
        privacy_request.fulfilled_at = now
        privacy_request.fulfilled_by = actor
        timeline.record(
            privacy_request.quote_request_id,
            EventType.PRIVACY_REQUEST_FULFILLED,
            actor,
            data={"privacy_request_id": privacy_request.id, "kind": kind},
            at=now,
        )
    return len(open_ones)


def listing(status: str | None, limit: int) -> list[dict]:
    """Admins: the patients' requests, soonest due first, with their request's reference."""
    statement = (
        db.select(PrivacyRequest, QuoteRequest.reference)
        .join(QuoteRequest, QuoteRequest.id == PrivacyRequest.quote_request_id)
        .order_by(PrivacyRequest.due_at, PrivacyRequest.id)
        .limit(limit)
    )
    if status is not None:
        statement = statement.where(PrivacyRequest.status == status)
    now = utcnow()
    return [
        {
            "id": row.id,
            "reference": reference,
            "kind": row.kind,
            "status": row.status,
            "requested_at": row.requested_at,
            "due_at": row.due_at,
            "overdue": row.status == PrivacyRequestStatus.OPEN and row.due_at < now,
            "fulfilled_at": row.fulfilled_at,
            "fulfilled_by": row.fulfilled_by,
        }
        for row, reference in db.session.execute(statement).all()
    ]
