"""Possible duplicates: a submission that resembles an open request, and what a coordinator decides.

A patient who sends the same request again within a day (same inbox,
condition and destination) gets a request of their own: its own reference and
time in the 201, everything it carried stored (encrypted, like any request).
The submitter is told nothing about the earlier request, which may not even
be theirs: anyone can type a patient's address. The new request is marked as
a possible duplicate of the earlier one and held: no acknowledgement, no
routing (so no clinic is emailed twice), until a coordinator either merges it
into the earlier one (its details join the earlier request, it is closed) or
keeps it apart (it is routed and acknowledged like any other).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_

from quote_service.addresses import mailbox
from quote_service.crypto import keyring
from quote_service.errors import Conflict, InvalidFields
from quote_service.extensions import db
from quote_service.models import Actor, EventType, QuoteRequest, RequestStatus, utcnow, vocabulary
from quote_service.services import outbox, timeline

# A submission matching a request not yet quoted (vocabulary.BEFORE_QUOTE), of
# the same inbox (the email without its +tag), condition and destination within
# the window, is possibly the same patient asking again: it is stored on its
# own and marked, not routed.
DUPLICATE_WINDOW = timedelta(hours=24)
# What a merge may carry over from the newer request, in this order. The email
# (where the patient is written to) and the consent ledger stay the older's own.
MERGED_FIELDS = (
    "full_name",
    "phone",
    "country_of_residence",
    "preferred_language",
    "treatment_slug",
    "patient_age",
    "travel_from",
    "travel_to",
    "budget_eur",
    "message",
)
MESSAGE_SEPARATOR = "\n\n"


class NotADuplicate(Conflict):
    """A merge or keep-apart of a request that is not an undecided possible duplicate."""

    code = "not_a_duplicate"


class DuplicateUndecided(Conflict):
    """Routing a possible duplicate before a coordinator merged it or kept it apart."""

    code = "duplicate_undecided"


class MergeIntoItself(InvalidFields):
    code = "merge_into_itself"


class UnknownReference(InvalidFields):
    code = "unknown_reference"


class DuplicateNotOpen(Conflict):
    """One of the two requests ended meanwhile (rejected, spam...): nothing to merge."""

    code = "request_not_open"


def open_resemblance(data: dict[str, Any], now: datetime) -> QuoteRequest | None:
    """The newest open request of the same inbox, condition and destination in the window.

    `jan+1@` and `jan+2@` are one inbox: tags must not get around the check.
    A request still waiting as a possible duplicate is not one to resemble:
    a third submission is shown beside the first, not beside the second.
    """
    return (
        db.session.execute(
            db.select(QuoteRequest)
            .where(
                QuoteRequest.email_mailbox_hash.in_(
                    keyring().lookup_hashes(mailbox(data["email"]))
                ),
                QuoteRequest.condition_slug == data["condition"],
                QuoteRequest.destination_code == data["destination"],
                QuoteRequest.status.in_(vocabulary.BEFORE_QUOTE),
                QuoteRequest.created_at >= now - DUPLICATE_WINDOW,
                or_(
                    QuoteRequest.possible_duplicate_of_id.is_(None),
                    QuoteRequest.duplicate_decision == "kept_apart",
                ),
            )
            .order_by(QuoteRequest.created_at.desc(), QuoteRequest.id.desc())
            .limit(1)
        )
        .scalars()
        .first()
    )


def mark(request: QuoteRequest, earlier: QuoteRequest, now: datetime) -> None:
    """Record on both timelines that `request` may repeat `earlier`; references only, no data."""
    request.possible_duplicate_of = earlier
    timeline.record(
        request,
        EventType.POSSIBLE_DUPLICATE,
        Actor.PATIENT,
        "This resembles an open request of the same inbox, condition and "
        "destination. It is not routed or acknowledged until a coordinator "
        "merges it or keeps it apart.",
        {"of": earlier.reference},
        at=now,
    )
    timeline.record(
        earlier,
        EventType.DUPLICATE_SUBMISSION,
        Actor.PATIENT,
        "A request resembling this one was submitted; merge it or keep it apart.",
        {"reference": request.reference},
        at=now,
    )


def pending(request: QuoteRequest) -> bool:
    return request.possible_duplicate_of_id is not None and request.duplicate_decision is None


def view(request: QuoteRequest) -> dict[str, Any]:
    """The detail's duplicate members: the requests to look at beside this one."""
    others: list[QuoteRequest] = []
    if pending(request) and request.possible_duplicate_of is not None:
        others.append(request.possible_duplicate_of)
    others.extend(
        db.session.execute(
            db.select(QuoteRequest)
            .where(
                QuoteRequest.possible_duplicate_of_id == request.id,
                QuoteRequest.duplicate_decision.is_(None),
            )
            .order_by(QuoteRequest.created_at, QuoteRequest.id)
        ).scalars()
    )
    merged = request.duplicate_decision == "merged" and request.possible_duplicate_of is not None
    return {
        "possible_duplicate_of": (
            request.possible_duplicate_of.reference
            if pending(request) and request.possible_duplicate_of is not None
            else None
        ),
        "merged_into": request.possible_duplicate_of.reference if merged else None,
        "possible_duplicates": [
            {"reference": o.reference, "created_at": o.created_at, "status": o.status}
            for o in others
        ],
    }


def _held(newer: QuoteRequest) -> QuoteRequest:
    """The request `newer` was held beside; refuse if it is not an undecided duplicate."""
    earlier = newer.possible_duplicate_of
    if not pending(newer) or earlier is None:
        raise NotADuplicate(
            f"{newer.reference} is not a possible duplicate waiting for a decision."
        )
    if newer.status != RequestStatus.RECEIVED:
        raise DuplicateNotOpen(
            f"{newer.reference} is {newer.status}; only a request still waiting can be "
            "merged or kept apart."
        )
    return earlier


def _find(reference: str) -> QuoteRequest | None:
    """The request, locked for this transaction like the one it is merged with."""
    return db.session.execute(
        db.select(QuoteRequest)
        .where(QuoteRequest.reference == reference.strip().upper())
        .with_for_update()
    ).scalar_one_or_none()


def check_merge(newer: QuoteRequest, into: str) -> QuoteRequest:
    """The request `newer` merges into; every refusal names its own code."""
    if into.strip().upper() == newer.reference:
        message = f"{newer.reference} cannot be merged into itself."
        raise MergeIntoItself({"into": [message]}, message)
    older = _find(into)
    if older is None:
        message = f"No quote request {into}."
        raise UnknownReference({"into": [message]}, message)
    earlier = _held(newer)
    if older.id != earlier.id:
        raise NotADuplicate(
            f"{newer.reference} is a possible duplicate of {earlier.reference}, not of "
            f"{older.reference}.",
            {"into": [f"Merge into {earlier.reference}, or keep it apart."]},
        )
    if older.status not in vocabulary.BEFORE_QUOTE:
        raise DuplicateNotOpen(
            f"{older.reference} is {older.status}; a request can be merged only into an "
            "open one. Keep it apart instead."
        )
    return older


def merge(newer: QuoteRequest, older: QuoteRequest, actor: str, note: str | None) -> list[str]:
    """Carry the newer's details over to the older, close the newer; the fields changed.

    The events name the fields, never their values: the values are in the two
    requests, encrypted where they are personal.
    """
    now = utcnow()
    changed: list[str] = []
    for field in MERGED_FIELDS:
        value = getattr(newer, field)
        current = getattr(older, field)
        if value is None or value == current:
            continue
        if field == "message" and current:
            if value in current:
                continue
            value = current + MESSAGE_SEPARATOR + value
        setattr(older, field, value)
        changed.append(field)
    if newer.urgent and not older.urgent:
        # The coordinators' alert went for the newer; its signs now show on the older.
        older.urgent = True
        older.safety = newer.safety
        older.safety_verdict = newer.safety_verdict
        changed.append("urgent")
    newer.duplicate_decision = "merged"
    newer.status = RequestStatus.CLOSED
    names = ", ".join(changed) if changed else "nothing new"
    timeline.record(
        older,
        EventType.MERGED,
        actor,
        note or f"Merged from {newer.reference}: {names}.",
        {"from": newer.reference, "fields": changed},
        at=now,
        bump=True,
    )
    timeline.record(
        newer,
        EventType.MERGED,
        actor,
        note or f"Merged into {older.reference}.",
        {"into": older.reference, "fields": changed, "previous": RequestStatus.RECEIVED},
        at=now,
        bump=True,
    )
    return changed


def keep_apart(newer: QuoteRequest, actor: str, note: str | None) -> None:
    """The newer is its own request after all: route and acknowledge it as any other."""
    earlier = _held(newer)
    now = utcnow()
    newer.duplicate_decision = "kept_apart"
    timeline.record(
        newer, EventType.KEPT_APART, actor, note, {"of": earlier.reference}, at=now, bump=True
    )
    timeline.record(
        earlier, EventType.KEPT_APART, actor, note, {"reference": newer.reference}, at=now
    )
    # The same hand-over a fresh submission gets: the worker routes it and
    # sends its acknowledgement.
    outbox.enqueue(outbox.TOPIC_RECEIVED, {"quote_request_id": newer.id}, now)
