"""Urgent symptoms at the service level: flagging a request, the coordinator's review.

The rules themselves live in `quote_service.safety` (no database there); this
module records what they found on a request, in the caller's transaction, and
takes the coordinators' verdicts. Flagging never blocks a request.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from quote_service.errors import NotFlagged
from quote_service.extensions import db
from quote_service.models import (
    SAFETY_VERDICTS,
    Actor,
    Event,
    EventType,
    QuoteRequest,
    RequestStatus,
    utcnow,
)
from quote_service.safety.signs import Assessment, ruleset
from quote_service.services import notifications, timeline
from quote_service.services.workflow import check_version, lock

VERDICTS = SAFETY_VERDICTS


def flag(request: QuoteRequest, assessment: Assessment, now: datetime | None = None) -> None:
    """Mark a request urgent with what matched, and queue the coordinators' alert once.

    Runs inside the intake's transaction, after the request was flushed. A
    request already flagged is left as it is (one alert per request). Spam is
    marked but sends nothing, like every other email of spam.
    """
    if request.urgent or not assessment.urgent:
        return
    now = now or utcnow()
    request.urgent = True
    request.safety = {
        "version": assessment.version,
        "rules": [
            {"id": m.rule, "category": m.category, "language": m.language}
            for m in assessment.matches
        ],
    }
    timeline.record(
        request.id,
        EventType.URGENT_FLAGGED,
        Actor.SYSTEM,
        data={"rules": assessment.rule_ids, "version": assessment.version},
        at=now,
    )
    if request.status != RequestStatus.SPAM:
        notifications.prepare_urgent_alert(request)


def review(
    reference: str,
    verdict: str,
    note: str | None,
    actor: str,
    expected: int | None = None,
) -> QuoteRequest:
    """Record a coordinator's verdict on a flagged request; a later verdict replaces it."""
    request = lock(reference)
    check_version(request, expected)
    if not request.urgent:
        raise NotFlagged(
            f"{request.reference} was not flagged as urgent; there is nothing to review."
        )
    previous = request.safety_verdict
    now = utcnow()
    request.safety_verdict = verdict
    timeline.record(
        request,
        EventType.SAFETY_REVIEW,
        actor,
        note,
        {"verdict": verdict, "previous": previous},
        at=now,
        bump=True,
    )
    db.session.commit()
    return request


def view(request: QuoteRequest, events: list[Event] | None = None) -> dict[str, Any]:
    """The detail's `safety`: urgent, the rules that matched (with labels), the verdict."""
    labels = {rule.id: rule.label for rule in ruleset().rules}
    recorded = request.safety or {}
    reviews = [
        e
        for e in (events if events is not None else request.events)
        if e.type == EventType.SAFETY_REVIEW
    ]
    last = reviews[-1] if reviews else None
    return {
        "urgent": bool(request.urgent),
        "rules_version": recorded.get("version"),
        "rules": [
            {**rule, "label": labels.get(rule["id"], rule["id"])}
            for rule in recorded.get("rules", [])
        ],
        "verdict": request.safety_verdict,
        "reviewed_by": last.actor if last else None,
        "reviewed_at": last.at if last else None,
    }
