"""Clinic quotes: a clinic submits or replaces its quote; coordinators send quotes on."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l

from quote_service.errors import Conflict, InvalidFields
from quote_service.extensions import db
from quote_service.models import (
    Actor,
    ClinicQuote,
    Event,
    EventType,
    Invitation,
    InvitationStatus,
    Notification,
    QuoteItem,
    QuoteRequest,
    QuoteStatus,
    RequestStatus,
    utcnow,
    vocabulary,
)
from quote_service.services import invitations, notifications, timeline

QUOTE_FIELDS = (
    "price_min",
    "price_max",
    "currency",
    "includes",
    "excludes",
    "valid_until",
    "earliest_start",
    "doctor",
    "evidence",
    "trial_id",
    "notes",
)


class QuoteAlreadySent(Conflict):
    code = "quote_already_sent"


class RequestEnded(Conflict):
    code = "request_closed"


def _check_items(data: dict[str, Any]) -> None:
    known = set(
        db.session.execute(db.select(QuoteItem.slug).where(QuoteItem.active.is_(True))).scalars()
    )
    errors = {}
    for field in ("includes", "excludes"):
        unknown = [slug for slug in data.get(field, ()) if slug not in known]
        if unknown:
            errors[field] = [f"Not a quote item of the catalog: {', '.join(unknown)}."]
    if errors:
        raise InvalidFields(errors)


def submit(token: str, data: dict[str, Any]) -> tuple[ClinicQuote, bool]:
    """Store the quote of an invitation; return it and whether it is new (else replaced)."""
    invitation = invitations.find(token, lock=True)
    invitations.check_answerable(invitation)
    _check_items(data)
    request = db.session.get_one(QuoteRequest, invitation.quote_request_id)
    quote = db.session.execute(
        db.select(ClinicQuote).where(ClinicQuote.invitation_id == invitation.id)
    ).scalar_one_or_none()
    if quote is not None and quote.status != QuoteStatus.SUBMITTED:
        raise QuoteAlreadySent(
            f"This quote was already {quote.status} to the patient; it can no longer be replaced."
        )
    created = quote is None
    now = utcnow()
    if created:
        quote = ClinicQuote(
            invitation_id=invitation.id,
            quote_request_id=request.id,
            provider_id=invitation.provider_id,
            status=QuoteStatus.SUBMITTED,
        )
        db.session.add(quote)
    for field in QUOTE_FIELDS:
        setattr(quote, field, data.get(field, [] if field in ("includes", "excludes") else None))
    quote.submitted_at = now
    invitation.status = InvitationStatus.QUOTED
    invitation.answered_at = invitation.answered_at or now
    db.session.flush()
    timeline.record(
        request.id,
        EventType.QUOTE_SUBMITTED if created else EventType.QUOTE_REPLACED,
        Actor.SYSTEM,
        f"{invitation.provider.name} sent a quote.",
        {"quote_id": quote.id, "provider_id": invitation.provider_id},
        at=now,
    )
    db.session.commit()
    return quote, created


def quotes_of(request_id: int) -> list[ClinicQuote]:
    return list(
        db.session.execute(
            db.select(ClinicQuote)
            .where(ClinicQuote.quote_request_id == request_id)
            .order_by(ClinicQuote.id)
        ).scalars()
    )


def send_to_patient(
    request: QuoteRequest, quote_ids: list[int], note: str | None, actor: str
) -> Notification:
    """Email the patient the chosen quotes side by side; the request becomes `quoted`.

    The caller has locked the request and checked its version; this commits.
    """
    if request.status in vocabulary.ENDED:
        raise RequestEnded(f"{request.reference} is {request.status}; nothing is sent for it.")
    if request.erased_at is not None:
        raise RequestEnded(f"{request.reference} was erased; nothing is sent for it.")
    wanted = list(dict.fromkeys(quote_ids))
    quotes = {
        q.id: q
        for q in db.session.execute(
            db.select(ClinicQuote).where(ClinicQuote.id.in_(wanted)).with_for_update()
        ).scalars()
    }
    problems = []
    for quote_id in wanted:
        quote = quotes.get(quote_id)
        if quote is None or quote.quote_request_id != request.id:
            problems.append(f"{quote_id}: not a quote of {request.reference}.")
        elif quote.status != QuoteStatus.SUBMITTED:
            problems.append(f"{quote_id}: already {quote.status}.")
    if problems:
        raise InvalidFields({"quote_ids": problems})
    chosen = [quotes[i] for i in wanted]
    previous_sends = db.session.execute(
        db.select(db.func.count(Notification.id)).where(
            Notification.quote_request_id == request.id, Notification.kind == "quotes"
        )
    ).scalar()
    notification = notifications.prepare_quotes_email(
        request, chosen, dedupe_key=f"quotes:{request.id}:{previous_sends + 1}"
    )
    now = utcnow()
    for quote in chosen:
        quote.status = QuoteStatus.SENT
        quote.sent_at = now
    previous = request.status
    request.status = RequestStatus.QUOTED
    timeline.record(
        request,
        EventType.QUOTES_SENT,
        actor,
        note,
        {
            "quote_ids": wanted,
            "notification_id": notification.id,
            "previous": previous,
            "status": notification.status,
        },
        at=now,
        bump=True,
    )
    db.session.commit()
    return notification


def withdraw_for_request(request: QuoteRequest) -> None:
    """The request ended without them: quotes not sent are withdrawn. The caller commits."""
    db.session.execute(
        db.update(ClinicQuote)
        .where(
            ClinicQuote.quote_request_id == request.id, ClinicQuote.status == QuoteStatus.SUBMITTED
        )
        .values(status=QuoteStatus.WITHDRAWN)
    )


def invitation_of(quote: ClinicQuote) -> Invitation:
    return db.session.get_one(Invitation, quote.invitation_id)


class QuoteNotOffered(InvalidFields):
    """A quote id that is not one of the quotes sent to this request's patient."""

    code = "quote_not_offered"

    def __init__(self) -> None:
        super().__init__({"quote_id": [_l("This quote was not sent to you.")]})


def record_interest(request: QuoteRequest, quote_id: int) -> ClinicQuote:
    """The patient is interested in one of the quotes sent: an event, and the coordinators told.

    Saying it twice changes nothing: one event and one alert per quote.
    """
    quote = db.session.get(ClinicQuote, quote_id)
    if quote is None or quote.quote_request_id != request.id or quote.status != QuoteStatus.SENT:
        raise QuoteNotOffered()
    if request.status in vocabulary.ENDED:
        raise RequestEnded(f"{request.reference} is {request.status}.")
    already = db.session.execute(
        db.select(Event.id).where(
            Event.quote_request_id == request.id,
            Event.type == EventType.PATIENT_INTEREST,
            Event.data["quote_id"].as_integer() == quote.id,
        )
    ).first()
    if already is None:
        timeline.record(
            request.id,
            EventType.PATIENT_INTEREST,
            Actor.PATIENT,
            f"Interested in the quote of {quote.provider.name}.",
            {"quote_id": quote.id, "provider_id": quote.provider_id},
        )
        notifications.prepare_interest_alert(request, quote)
    db.session.commit()
    return quote
