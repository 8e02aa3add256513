"""The workflow of a quote request: transitions, assignment, notes, reroute, resend, duplicates.

The statuses and their groups are models/vocabulary.py's; TRANSITIONS below
are the moves a coordinator may make between them.

Every change bumps the request's `version`: a coordinator acting on a stale
copy it names is refused with StaleVersion, never silently overwritten (the
API answers it 409, or 412 when the version came from If-Match); a change that
names no version is served. Every change writes an event naming who did it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy.exc import IntegrityError

from quote_service.errors import (
    InvalidFields,
    NotAcknowledgedYet,
    NotFound,
    ReopenNotAllowed,
    ReopenTooLate,
    RequestErased,
    RequestNotOpen,
    RerouteNotAllowed,
    ResendInFlight,
    StaleVersion,
    TransitionNotAllowed,
)
from quote_service.extensions import db
from quote_service.models import (
    Event,
    EventType,
    Notification,
    Provider,
    QuoteRequest,
    RequestStatus,
    User,
    utcnow,
    vocabulary,
)
from quote_service.services import (
    clinic_quotes,
    duplicates,
    invitations,
    notifications,
    privacy,
    routing,
    timeline,
    users,
)

S = RequestStatus
# The moves a coordinator may make; received -> routed/unroutable is the worker's.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    S.RECEIVED: vocabulary.COORDINATOR_ENDINGS,
    S.ROUTED: (S.IN_REVIEW, *vocabulary.COORDINATOR_ENDINGS),
    S.UNROUTABLE: (S.IN_REVIEW, *vocabulary.COORDINATOR_ENDINGS),
    S.IN_REVIEW: (S.QUOTED, *vocabulary.COORDINATOR_ENDINGS),
    S.QUOTED: (S.CLOSED, *vocabulary.COORDINATOR_ENDINGS),
    **{status: () for status in vocabulary.ENDED},
}


def lock(reference: str) -> QuoteRequest:
    """The request, locked for this transaction (PostgreSQL), or 404."""
    request = db.session.execute(
        db.select(QuoteRequest).where(QuoteRequest.reference == reference.upper()).with_for_update()
    ).scalar_one_or_none()
    if request is None:
        raise NotFound(f"No quote request {reference}.")
    return request


def check_version(request: QuoteRequest, expected: int | None) -> None:
    """Refuse a change made on a stale copy; a change that names no version is served.

    The contract's own body (`{"to", "note"}`) carries no version, so the check
    is the client's choice: clients that send one (the console always does)
    are never silently overwritten.
    """
    if expected is None:
        return
    if expected != request.version:
        if expected > request.version:
            # A version from the future was never read here: say so, not "changed".
            message = (
                f"{request.reference} has no version {expected}; its current version "
                f"is {request.version}. Reload it and try again."
            )
        else:
            message = (
                f"{request.reference} changed since you read it (you read version "
                f"{expected}; it is now at version {request.version}); reload it and try again."
            )
        raise StaleVersion(message, {"version": [message]})


def _changed(request: QuoteRequest, type_: str, actor: str, note: str | None, **data) -> Event:
    return timeline.record(request, type_, actor, note, data, bump=True)


def transition(
    reference: str,
    to: str,
    note: str | None,
    actor: str,
    expected: int | None,
    outcome: str | None = None,
    require_outcome: bool = False,
) -> QuoteRequest:
    """Move a request on; closing, and only closing, takes an `outcome` (vocabulary.Outcome).

    The contract's `{"to": "closed", "note"}` is served with the outcome
    unknown; the console, for people, passes `require_outcome` to ask for one.
    An illegal move is a 409 before a missing outcome is a 422.
    """
    request = lock(reference)
    check_version(request, expected)
    allowed = TRANSITIONS.get(request.status, ())
    if to not in allowed:
        message = f"{request.reference} cannot go from {request.status} to {to}; " + (
            f"allowed: {', '.join(allowed)}." if allowed else "it is closed."
        )
        if request.status in vocabulary.REOPENABLE:
            message += " To take it up again, POST .../reopen with a reason."
        raise TransitionNotAllowed(message, {"to": [message]}, {"allowed": list(allowed)})
    if outcome is not None and to != S.CLOSED:
        raise InvalidFields({"outcome": ["Only closing takes an outcome."]})
    if require_outcome and to == S.CLOSED and outcome is None:
        raise InvalidFields(
            {"outcome": [f"Say how it ended: one of {', '.join(vocabulary.Outcome)}."]}
        )
    previous = request.status
    request.status = to
    extra: dict[str, str] = {}
    if outcome is not None:
        request.outcome = outcome
        extra["outcome"] = outcome
    if to == S.WITHDRAWN:
        privacy.withdraw_consent(request)
    elif to in vocabulary.ENDED:
        # The request ended: the clinics still working on it are told by a dead link.
        invitations.close_for_request(request)
        if to != S.CLOSED:
            clinic_quotes.withdraw_for_request(request)
    _changed(request, vocabulary.status_event(to), actor, note, previous=previous, **extra)
    db.session.commit()
    return request


def reopen(reference: str, reason: str, actor: str, expected: int | None) -> QuoteRequest:
    """Take a closed or rejected request up again (in_review) within REOPEN_DAYS of its end."""
    request = lock(reference)
    check_version(request, expected)
    if request.erased_at is not None:
        raise RequestErased(f"{request.reference} was erased; it cannot be reopened.")
    if request.status not in vocabulary.REOPENABLE or request.duplicate_decision == "merged":
        raise ReopenNotAllowed(
            f"{request.reference} is {request.status}"
            + (" (merged into another request)" if request.duplicate_decision == "merged" else "")
            + "; only a closed or rejected request can be reopened."
        )
    days = current_app.config["REOPEN_DAYS"]
    ended_at = _ended_at(request)
    if utcnow() - ended_at >= timedelta(days=days):
        raise ReopenTooLate(
            f"{request.reference} was {request.status} on {ended_at:%Y-%m-%d}; a request "
            f"is reopened within {days} days of its end.",
            extra={"ended_at": ended_at.isoformat(), "reopen_days": days},
        )
    previous, previous_outcome = request.status, request.outcome
    request.status = S.IN_REVIEW
    request.outcome = None
    _changed(
        request, EventType.REOPENED, actor, reason, previous=previous, outcome=previous_outcome
    )
    db.session.commit()
    return request


def _ended_at(request: QuoteRequest) -> datetime:
    """When the request reached its current status (its latest event of that name)."""
    at = db.session.execute(
        db.select(db.func.max(Event.at)).where(
            Event.quote_request_id == request.id,
            Event.type == vocabulary.status_event(request.status),
        )
    ).scalar()
    return at or request.updated_at


def assign(
    reference: str,
    assignee: int | str | None,
    note: str | None,
    actor: str,
    expected: int | None,
) -> QuoteRequest:
    """Claim (assign to oneself), assign to another user (id or email), or unassign (None).

    A user assigned by someone else is told by a short email naming the reference.
    """
    request = lock(reference)
    check_version(request, expected)
    user: User | None = None
    if assignee is not None:
        user = users.find_active(assignee)
        if user is None:
            raise InvalidFields({"assignee": ["No active user with this id or email."]})
    assignee_id = user.id if user is not None else None
    previous = request.assignee_id
    request.assignee_id = assignee_id
    request.assignee = user
    if user is not None and previous != user.id and actor != users.actor_of(user):
        notifications.prepare_assignment_notice(request, user, actor)
    _changed(
        request,
        EventType.ASSIGNED if assignee_id is not None else EventType.UNASSIGNED,
        actor,
        note,
        assignee_id=assignee_id,
        previous_assignee_id=previous,
    )
    db.session.commit()
    return request


def add_note(reference: str, note: str, actor: str) -> Event:
    """A note adds to the timeline and changes nothing else, so it needs no version."""
    request = lock(reference)
    event = timeline.record(request, EventType.NOTE, actor, note)
    db.session.commit()
    return event


def reroute(
    reference: str,
    provider_id: int | None,
    note: str | None,
    actor: str,
    expected: int | None,
) -> QuoteRequest:
    """Route again (or to the provider a coordinator names) and email the new provider."""
    request = lock(reference)
    check_version(request, expected)
    if request.status not in vocabulary.BEFORE_QUOTE:
        raise RerouteNotAllowed(
            f"{request.reference} is {request.status}; "
            "only open requests without a quote can be rerouted."
        )
    if duplicates.pending(request):
        raise duplicates.DuplicateUndecided(
            f"{request.reference} may repeat {request.possible_duplicate_of.reference}: "
            "merge it or keep it apart before routing it."
        )
    if provider_id is not None:
        _check_pick(request, provider_id)
    first_routing = request.status == S.RECEIVED
    previous_provider_id = request.provider_id
    decision = routing.decide(
        request,
        actor,
        note,
        choose=provider_id,
        event_type=EventType.REROUTED,
        set_status=request.status != S.IN_REVIEW,
    )
    request.version += 1
    if first_routing:
        invitations.after_routing(request, decision)
    elif decision.provider_id is not None:
        if previous_provider_id not in (None, decision.provider_id):
            invitations.withdraw_provider(request, previous_provider_id)
        provider = db.session.get_one(Provider, decision.provider_id)
        invitations.reinvite(request, provider)
    else:
        notifications.prepare_unroutable_alert(request, decision)
    db.session.commit()
    return request


def merge(
    reference: str,
    into: str,
    note: str | None,
    actor: str,
    expected: int | None,
) -> QuoteRequest:
    """Merge a possible duplicate into the request it resembles; the newer is closed."""
    newer = lock(reference)
    check_version(newer, expected)
    older = duplicates.check_merge(newer, into)
    duplicates.merge(newer, older, actor, note)
    db.session.commit()
    return newer


def keep_apart(reference: str, note: str | None, actor: str, expected: int | None) -> QuoteRequest:
    """A possible duplicate is its own request: it is routed and acknowledged."""
    request = lock(reference)
    check_version(request, expected)
    duplicates.keep_apart(request, actor, note)
    db.session.commit()
    return request


def _check_pick(request: QuoteRequest, provider_id: int) -> None:
    provider = db.session.get(Provider, provider_id)
    if provider is None or provider.destination_code != request.destination_code:
        raise InvalidFields({"provider_id": ["No provider with this id at the destination."]})
    if not provider.active:
        raise InvalidFields({"provider_id": ["This provider is inactive."]})
    if request.condition_slug not in {c.slug for c in provider.conditions}:
        raise InvalidFields(
            {"provider_id": [f"This provider does not treat {request.condition_slug}."]}
        )


def resend_acknowledgement(reference: str, note: str | None, actor: str) -> Notification:
    """A new acknowledgement through the same disclaimer guard; the old one stays recorded."""
    request = lock(reference)
    # Erasure first: an erased request has no address left to write to.
    if request.erased_at is not None:
        raise RequestErased(f"{request.reference} was erased; nothing is sent for it.")
    if request.status not in vocabulary.OPEN:
        raise RequestNotOpen(
            f"{request.reference} is {request.status}; an acknowledgement is resent "
            "only for an open request."
        )
    count = db.session.execute(
        db.select(db.func.count(Notification.id)).where(
            Notification.quote_request_id == request.id,
            Notification.kind == "acknowledgement",
        )
    ).scalar()
    if count == 0:
        # The first one is the worker's, after routing; a resend now would make two.
        raise NotAcknowledgedYet(
            f"{request.reference} has not been acknowledged yet; nothing to resend."
        )
    # A corrected address gets one resend past the per-address cap.
    past_cap = notifications.email_corrected_since_acknowledged(request)
    notification = notifications.prepare_acknowledgement(
        request,
        dedupe_key=f"acknowledgement:{request.id}:resend:{count + 1}",
        resend=True,
        past_cap=past_cap,
    )
    data = {"notification_id": notification.id, "status": notification.status}
    if past_cap:
        data["past_cap"] = True
    timeline.record(request, EventType.ACKNOWLEDGEMENT_RESENT, actor, note, data)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise ResendInFlight("Another resend of this acknowledgement is under way.") from None
    return notification


def send_quotes(
    reference: str,
    quote_ids: list[int],
    note: str | None,
    actor: str,
    expected: int | None = None,
) -> QuoteRequest:
    """Send the patient the chosen clinics' quotes, on the version the caller read."""
    request = lock(reference)
    check_version(request, expected)
    clinic_quotes.send_to_patient(request, quote_ids, note, actor)
    return request
