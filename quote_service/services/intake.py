"""Taking in a quote request: business rules, then one transaction.

The request, its `received` event and the outbox row that hands it to the
workers are written together or not at all; nothing here talks to the broker.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError

from quote_service.errors import InvalidFields
from quote_service.extensions import db
from quote_service.models import (
    Condition,
    Destination,
    Event,
    Language,
    QuoteRequest,
    Treatment,
    destination_condition,
    utcnow,
)
from quote_service.services import outbox
from quote_service.services.catalog import current_consent, languages
from quote_service.services.references import new_reference

PATIENT = "patient"
# Collisions in 6.6e11 references are rare; a few tries make them harmless.
REFERENCE_ATTEMPTS = 5


def check_catalog_fields(data: dict[str, Any]) -> None:
    """Check what only the database knows; raise one error listing every bad field."""
    errors: dict[str, list[str]] = {}
    destination = db.session.get(Destination, data["destination"])
    condition = db.session.get(Condition, data["condition"])
    treatment = db.session.get(Treatment, data["treatment"])
    if destination is None or not destination.active:
        errors["destination"] = ["We do not offer this destination."]
    if condition is None or not condition.active:
        errors["condition"] = ["We do not offer quotes for this condition."]
    elif destination is not None and destination.active and not _offered(destination, condition):
        errors["condition"] = [f"This condition is not offered in {destination.names['en']}."]
    if treatment is None or not treatment.active:
        errors["treatment"] = ["Unknown treatment."]
    if db.session.get(Language, data["preferred_language"]) is None:
        errors["preferred_language"] = [f"Choose one of: {', '.join(languages())}."]
    if errors:
        raise InvalidFields(errors)


def _offered(destination: Destination, condition: Condition) -> bool:
    row = db.session.execute(
        db.select(destination_condition).where(
            destination_condition.c.destination_code == destination.code,
            destination_condition.c.condition_slug == condition.slug,
        )
    ).first()
    return row is not None


def submit_quote_request(data: dict[str, Any]) -> QuoteRequest:
    """Validate against the catalog and store a request with its event and outbox row.

    A filled honeypot (`website`) is stored as spam, with no outbox row: the
    caller answers as if it were a success, so bots learn nothing.
    """
    check_catalog_fields(data)
    consent = current_consent(data["preferred_language"])
    if consent is None:
        raise InvalidFields({"consent_privacy": ["No consent text is published yet."]})
    is_spam = bool(data.get("website"))
    now = utcnow()
    for attempt in range(REFERENCE_ATTEMPTS):
        request = QuoteRequest(
            reference=new_reference(),
            status="spam" if is_spam else "received",
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
        request.events.append(
            Event(
                type="spam" if is_spam else "received",
                actor=PATIENT,
                at=now,
                note="Honeypot field filled in." if is_spam else None,
            )
        )
        db.session.add(request)
        try:
            db.session.flush()
        except IntegrityError:
            db.session.rollback()
            if attempt == REFERENCE_ATTEMPTS - 1:
                raise
            continue
        if not is_spam:
            outbox.enqueue(outbox.TOPIC_RECEIVED, {"quote_request_id": request.id}, now)
        db.session.commit()
        return request
    raise AssertionError("unreachable")
