"""Taking in a quote request: business rules, then one transaction.

The request, its `received` event and the outbox row that hands it to the
workers are written together or not at all; nothing here talks to the broker.
A submission resembling one still open (a double click, a resubmitted form,
or someone else typing the same address) is stored as a request of its own and
held as a possible duplicate for a coordinator (see `services.duplicates`); the
submitter's receipt is its own and tells nothing about the earlier request.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from quote_service.addresses import mailbox
from quote_service.crypto import keyring
from quote_service.errors import InvalidFields
from quote_service.extensions import db
from quote_service.i18n import current_language
from quote_service.models import (
    Actor,
    QuoteRequest,
    RequestStatus,
    utcnow,
    vocabulary,
)
from quote_service.safety.emergency import advice
from quote_service.safety.signs import Assessment, assess
from quote_service.services import (
    catalog_snapshot,
    duplicates,
    idempotency,
    outbox,
    patient_tokens,
    safety,
    timeline,
)
from quote_service.services.catalog import translated
from quote_service.services.references import new_reference
from quote_service.services.statements import Write, execute_together

# Collisions in 6.6e11 references are rare; a few tries make them harmless.
REFERENCE_ATTEMPTS = 5
S = RequestStatus


@dataclass(frozen=True)
class Receipt:
    """What the submitter is told, read before the commit: answering needs no query after it."""

    reference: str
    created_at: datetime
    # Urgent symptoms: when true, what the submitter must be told at once.
    urgent: bool = False
    advice: str | None = None
    emergency_number: str | None = None


# What the caller stores with the request (an Idempotency-Key's answer), made from its receipt.
Answer = Callable[[Receipt], idempotency.Recording]


def check_catalog_fields(data: dict[str, Any], catalog: catalog_snapshot.Snapshot) -> None:
    """Check what only the catalog knows; raise one error listing every bad field."""
    errors: dict[str, list[str]] = {}
    destination = catalog.destinations.get(data["destination"])
    condition = data["condition"]
    if destination is None:
        errors["destination"] = [_l("We do not offer this destination.")]
    if condition not in catalog.active_conditions:
        errors["condition"] = [_l("We do not offer quotes for this condition.")]
    elif destination is not None and (data["destination"], condition) not in catalog.offers:
        name = translated(destination, current_language())
        errors["condition"] = [_l("This condition is not offered in %(place)s.", place=name)]
    if data["treatment"] not in catalog.active_treatments:
        errors["treatment"] = [_l("Unknown treatment.")]
    problem = language_problem(data["preferred_language"], catalog)
    if problem is not None:
        errors["preferred_language"] = [problem]
    if errors:
        raise InvalidFields(errors)


def language_problem(code: str, catalog: catalog_snapshot.Snapshot | None = None) -> Any:
    """Why `code` is no language of the catalog's, or None when it is one."""
    catalog = catalog or catalog_snapshot.current()
    if code in catalog.languages:
        return None
    return _l("Choose one of: %(choices)s.", choices=", ".join(catalog.languages))


def receive_quote_request(data: dict[str, Any], answer: Answer | None = None) -> Receipt:
    """The public intake: store the request; one resembling an open request is held beside it.

    The receipt is always the new request's own. `answer` gets it inside the
    transaction and returns the answer to store (an Idempotency-Key's),
    written with the request's event and outbox row.
    A filled honeypot (`website`) is stored as spam, with no outbox row: the
    caller answers as if it were a success, so bots learn nothing.
    """
    return _take_in(data, answer, link_duplicates=True)[1]


def submit_quote_request(data: dict[str, Any]) -> QuoteRequest:
    """Validate against the catalog and store a new request with its event and outbox row.

    Unlike `receive_quote_request` it never looks for an earlier request.
    """
    return _take_in(data, None, link_duplicates=False)[0]


def _take_in(
    data: dict[str, Any], answer: Answer | None, link_duplicates: bool
) -> tuple[QuoteRequest, Receipt]:
    catalog = catalog_snapshot.current()
    check_catalog_fields(data, catalog)
    consent = catalog.consent(data["preferred_language"])
    if consent is None:
        raise InvalidFields({"consent_privacy": [_l("No consent text is published yet.")]})
    # Spam is never compared: a bot must not touch what a patient sent.
    is_spam = bool(data.get("website"))
    now = utcnow()
    # Read before anything is written: the rules are compiled once per process.
    assessment = assess(data.get("message"))
    for attempt in range(REFERENCE_ATTEMPTS):
        earlier = None
        if link_duplicates and not is_spam:
            _lock_submissions_like(data)
            earlier = duplicates.open_resemblance(data, now)
        request = _new_request(data, consent, is_spam, now)
        db.session.add(request)
        try:
            db.session.flush()
        except IntegrityError:
            # The rollback ends the transaction and its lock; the next round takes both again.
            db.session.rollback()
            if attempt == REFERENCE_ATTEMPTS - 1:
                raise
            continue
        receipt = _receipt(request.reference, request.created_at, assessment, data)
        # Its first event, the outbox row that hands it to the workers and the
        # stored answer: one statement on PostgreSQL, before any other event.
        writes: list[Write] = [
            timeline.insertion(
                request.id,
                vocabulary.status_event(request.status),
                Actor.PATIENT,
                "Honeypot field filled in." if is_spam else None,
                at=now,
            )
        ]
        if earlier is None and not is_spam:
            # A possible duplicate is held for a coordinator: no outbox row, so no
            # routing and no second acknowledgement; its answer looks like any other.
            writes.append(
                outbox.insertion(outbox.TOPIC_RECEIVED, {"quote_request_id": request.id}, now)
            )
        stored = answer(receipt) if answer is not None else None
        if stored is not None:
            writes.append(stored.write)  # last: its RETURNING is the result
        result = execute_together(writes)
        if stored is not None:
            stored.confirm(result)
        if earlier is not None:
            duplicates.mark(request, earlier, now)
        safety.flag(request, assessment, now)
        db.session.commit()
        return request, receipt
    raise AssertionError("unreachable")


def _receipt(
    reference: str, created_at: datetime, assessment: Assessment, data: dict[str, Any]
) -> Receipt:
    """The answer, with the emergency advice in the submitter's language when urgent."""
    if not assessment.urgent:
        return Receipt(reference, created_at)
    text, number = advice(data["preferred_language"], data["country_of_residence"])
    return Receipt(reference, created_at, True, text, number)


def _new_request(
    data: dict[str, Any], consent: catalog_snapshot.Consent, is_spam: bool, now: datetime
) -> QuoteRequest:
    request = QuoteRequest(
        reference=new_reference(),
        status=S.SPAM if is_spam else S.RECEIVED,
        full_name=data["full_name"],
        email=data["email"],
        phone=data.get("phone"),
        country_of_residence=data["country_of_residence"],
        preferred_language=data["preferred_language"],
        condition_slug=data["condition"],
        destination_code=data["destination"],
        treatment_slug=data["treatment"],
        patient_age=data.get("patient_age"),
        travel_from=data.get("travel_from"),
        travel_to=data.get("travel_to"),
        budget_eur=data.get("budget_eur"),
        message=data.get("message"),
        consent_privacy=True,
        consent_marketing=data["consent_marketing"],
        consent_version=consent.version,
        consent_language=consent.language,
        consented_at=now,
        created_at=now,
        updated_at=now,
    )
    patient_tokens.issue(request)
    return request


def _lock_submissions_like(data: dict[str, Any]) -> None:
    """Serialise submissions of one email, condition and destination until commit.

    Without it two double-clicked POSTs could both find no earlier request and
    both be routed and acknowledged. SQLite writes one transaction at a time and has no such lock.
    """
    if db.session.get_bind().dialect.name != "postgresql":
        return
    key = submission_lock_key(data["email"], data["condition"], data["destination"])
    db.session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def submission_lock_key(email: str, condition: str, destination: str) -> int:
    """The advisory lock key (signed 64 bits) of a submission; the email enters only hashed."""
    # The keyed lookup hash, not the address: lock keys are visible in pg_locks.
    material = "\x00".join((keyring().lookup_hash(mailbox(email)), condition, destination))
    return int.from_bytes(hashlib.sha256(material.encode()).digest()[:8], "big", signed=True)
