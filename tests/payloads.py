"""Request bodies shared by the intake tests."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any


def valid_body(**overrides: Any) -> dict[str, Any]:
    """A complete, valid quote request as a JSON client would send it."""
    start = date.today() + timedelta(days=60)
    body: dict[str, Any] = {
        "full_name": "Jan Peeters",
        "email": "jan.peeters@example.org",
        "phone": "+32 470 12 34 56",
        "country_of_residence": "BE",
        "preferred_language": "nl",
        "condition": "stroke",
        "destination": "BE",
        "treatment": "msc",
        "patient_age": 64,
        "travel_from": start.isoformat(),
        "travel_to": (start + timedelta(days=14)).isoformat(),
        "budget_eur": 25000,
        "message": "Stroke in March, left side weakness.\nAsking about MSC trials.",
        "consent_privacy": True,
        "consent_marketing": False,
    }
    body.update(overrides)
    return {key: value for key, value in body.items() if value is not None}


def minimal_body(**overrides: Any) -> dict[str, Any]:
    """Only the required fields."""
    body: dict[str, Any] = {
        "full_name": "Marie Dubois",
        "email": "marie.dubois@example.org",
        "country_of_residence": "FR",
        "condition": "diabetes-type-2",
        "destination": "AG",
        "consent_privacy": True,
    }
    body.update(overrides)
    return body
