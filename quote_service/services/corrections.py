"""A coordinator's correction of what the patient typed: name, email, phone, language, dates.

A typo in the email means the acknowledgement never arrives. The values are
checked as at intake: the intake schema's fields (schemas/queue.py), the
catalog's languages, and the phone read in the request's country of
residence. The lookup hashes follow the email and phone (the model sets them
on assignment). The `corrected` event names who changed which fields, never
the values: those stay in the request, encrypted where they are personal.
A corrected email may be sent the acknowledgement again once past the
per-address cap (`notifications.email_corrected_since_acknowledged`).
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma

from quote_service.errors import InvalidFields, RequestErased, RequestNotOpen
from quote_service.extensions import db
from quote_service.models import EventType, QuoteRequest, vocabulary
from quote_service.schemas.fields import normalise_phone
from quote_service.schemas.intake import check_travel_window
from quote_service.schemas.queue import CORRECTABLE
from quote_service.services import intake, timeline, workflow


def correct(
    reference: str,
    changes: dict[str, Any],
    note: str | None,
    actor: str,
    expected: int | None,
) -> QuoteRequest:
    """Apply the fields of `changes` that differ; none differing changes nothing (no event)."""
    request = workflow.lock(reference)
    workflow.check_version(request, expected)
    if request.erased_at is not None:
        raise RequestErased(f"{request.reference} was erased; there is nothing to correct.")
    if request.status in vocabulary.ENDED:
        raise RequestNotOpen(
            f"{request.reference} is {request.status}; only an open request is corrected."
        )
    values = checked(request, changes)
    changed = [
        name for name in CORRECTABLE if name in values and getattr(request, name) != values[name]
    ]
    if not changed:
        return request
    for name in changed:
        setattr(request, name, values[name])
    timeline.record(request, EventType.CORRECTED, actor, note, {"fields": changed}, bump=True)
    db.session.commit()
    return request


def checked(request: QuoteRequest, changes: dict[str, Any]) -> dict[str, Any]:
    """The correctable fields of `changes`, normalised; the rules that need the request's row."""
    values = {name: changes[name] for name in CORRECTABLE if name in changes}
    errors: dict[str, list[Any]] = {}
    if values.get("phone"):
        try:
            values["phone"] = normalise_phone(values["phone"], request.country_of_residence)
        except ma.ValidationError as error:
            errors["phone"] = list(error.messages)
    if "preferred_language" in values:
        problem = intake.language_problem(values["preferred_language"])
        if problem is not None:
            errors["preferred_language"] = [problem]
    start = values.get("travel_from", request.travel_from)
    end = values.get("travel_to", request.travel_to)
    try:
        check_travel_window(start, end)
    except ma.ValidationError as error:
        if "travel_to" in values:
            errors["travel_to"] = list(error.messages)
        else:
            errors["travel_from"] = [f"Must be on or before the end date ({end.isoformat()})."]
    if errors:
        raise InvalidFields(errors)
    return values
