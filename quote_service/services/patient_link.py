"""What a patient does on their link: read their request, say which quote interests them,
withdraw, ask for a copy or the erasure of their data.

The link's token is the only credential (services/patient_tokens.py); each
action locks the request, calls the service the coordinators' side already
uses, and writes an event whose actor is `patient`.
"""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l

from quote_service.errors import Conflict
from quote_service.extensions import db
from quote_service.models import (
    Actor,
    ClinicQuote,
    Event,
    EventType,
    PrivacyRequest,
    QuoteRequest,
    RequestStatus,
    vocabulary,
)
from quote_service.services import (
    clinic_quotes,
    invitations,
    notifications,
    patient_tokens,
    privacy,
    privacy_requests,
    timeline,
)
from quote_service.services.catalog import quote_item_names


class AlreadyWithdrawn(Conflict):
    code = "already_withdrawn"


def clinics_of(request: QuoteRequest) -> list[str]:
    """The clinics asked to quote (in the order they were invited), and the routed one."""
    names = [i.provider.name for i in invitations.invitations_of(request.id)]
    if request.provider is not None and request.provider.name not in names:
        names.insert(0, request.provider.name)
    return list(dict.fromkeys(names))


def sent_quotes(request: QuoteRequest) -> list[ClinicQuote]:
    """The quotes a coordinator sent this patient (never one only a clinic submitted)."""
    return [q for q in clinic_quotes.quotes_of(request.id) if q.sent_at is not None]


def interested_in(request: QuoteRequest) -> set[int]:
    data = db.session.execute(
        db.select(Event.data).where(
            Event.quote_request_id == request.id, Event.type == EventType.PATIENT_INTEREST
        )
    ).scalars()
    return {d["quote_id"] for d in data if d and "quote_id" in d}


def _quote(quote: ClinicQuote, items: dict[str, str], interested: set[int]) -> dict[str, Any]:
    return {
        "id": quote.id,
        "clinic": quote.provider.name,
        **{field: getattr(quote, field) for field in clinic_quotes.QUOTE_FIELDS},
        "includes": [{"slug": s, "name": items.get(s, s)} for s in quote.includes],
        "excludes": [{"slug": s, "name": items.get(s, s)} for s in quote.excludes],
        "sent_at": quote.sent_at,
        "interested": quote.id in interested,
    }


def view(request: QuoteRequest, language: str) -> dict[str, Any]:
    """The patient's own request, as `GET /api/v1/patient/<token>` answers it."""
    items = quote_item_names(language)
    interested = interested_in(request)
    return {
        "reference": request.reference,
        "status": request.status,
        "created_at": request.created_at,
        "condition": request.condition_slug,
        "destination": request.destination_code,
        "clinics": clinics_of(request),
        "quotes": [_quote(q, items, interested) for q in sent_quotes(request)],
        "consent": {
            "given_at": request.consented_at,
            "version": request.consent_version,
            "withdrawn_at": request.consent_withdrawn_at,
        },
    }


def page(request: QuoteRequest, language: str) -> dict[str, Any]:
    """What the HTML page shows: the view, with names and amounts in the patient's language."""
    interested = interested_in(request)
    return {
        **view(request, language),
        "labels": notifications.labels(request, language),
        "quotes_shown": [
            {
                "id": q.id,
                "interested": q.id in interested,
                **notifications.patient_quote_view(q, language),
            }
            for q in sent_quotes(request)
        ],
        "open": request.status in vocabulary.OPEN and request.consent_withdrawn_at is None,
    }


def express_interest(token: str, quote_id: int) -> tuple[QuoteRequest, ClinicQuote]:
    """The patient is interested in a quote sent to them: an event, and the coordinators told."""
    request = patient_tokens.find(token, lock=True)
    if request.status in vocabulary.ENDED or request.consent_withdrawn_at is not None:
        raise clinic_quotes.RequestEnded(_l("Your request has ended; it takes no more answers."))
    return request, clinic_quotes.record_interest(request, quote_id)


def withdraw(token: str) -> QuoteRequest:
    """The patient withdraws: consent withdrawn, pending emails and invitations cancelled.

    From any status, an ended one (closed, rejected, spam) included: the
    patient's word ends the processing, and `withdrawn` is the one status no
    coordinator can move a request out of (a closed request could otherwise
    be reopened and quoted again). A second withdrawal is a 409
    `already_withdrawn`.
    """
    request = patient_tokens.find(token, lock=True)
    if request.status == RequestStatus.WITHDRAWN or request.consent_withdrawn_at is not None:
        raise AlreadyWithdrawn(_l("You have already withdrawn this request."))
    previous = request.status
    request.status = RequestStatus.WITHDRAWN
    privacy.withdraw_consent(request)
    timeline.record(
        request,
        vocabulary.status_event(RequestStatus.WITHDRAWN),
        Actor.PATIENT,
        "Withdrawn by the patient on their page.",
        {"previous": previous},
        bump=True,
    )
    db.session.commit()
    return request


def request_privacy(token: str, kind: str) -> tuple[PrivacyRequest, bool]:
    """A copy of the patient's data, or its erasure: recorded with its due date, alerted."""
    request = patient_tokens.find(token, lock=True)
    return privacy_requests.record(request, kind)
