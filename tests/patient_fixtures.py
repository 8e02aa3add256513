"""Requests with quotes sent to their patient, for the patient-link tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date, timedelta
from email import message_from_string
from email.policy import default
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from quote_service.extensions import db
from quote_service.models import Event, Invitation, Notification, QuoteRequest
from quote_service.services import invitations, patient_tokens, pipeline
from tests.routing_fixtures import received_row, submit

CLINIC_API = "/api/v1/clinic/invitations"


def fan_out(clinics: int) -> Callable[..., Iterator[None]]:
    """An autouse fixture inviting `clinics` clinics per request (QUOTE_FANOUT) in its module."""

    @pytest.fixture(autouse=True)
    def fixture(app: Flask) -> Iterator[None]:
        app.config["QUOTE_FANOUT"] = clinics
        yield
        app.config["QUOTE_FANOUT"] = 1

    return fixture


PATIENT_API = "/api/v1/patient"
EMAIL = "ana.sousa@example.org"


def routed(
    portugal: Any, clinics: int = 2, add_clinics: bool = True, **overrides: Any
) -> QuoteRequest:
    """A PT request routed among `clinics` clinics (a-clinic first), its emails prepared.

    `add_clinics=False` for a second request routed to the clinics already added.
    """
    for index in range(clinics if add_clinics else 0):
        portugal(f"{chr(ord('a') + index)}", weight=10 - index)
    body = {
        "full_name": "Ana Sousa",
        "email": EMAIL,
        "message": "Stroke last year; weak right hand.",
        **overrides,
    }
    request = submit(**body)
    pipeline.process_received(received_row(request).id)
    return db.session.get_one(QuoteRequest, request.id)


def token(request: QuoteRequest) -> str:
    return patient_tokens.link_token(request)


def invited(request: QuoteRequest) -> list[Invitation]:
    return invitations.invitations_of(request.id)


def quote_body(price: int) -> dict[str, Any]:
    return {
        "price_min": price,
        "currency": "EUR",
        "includes": ["treatment"],
        "excludes": ["flights"],
        "valid_until": (date.today() + timedelta(days=60)).isoformat(),
        "evidence": "clinical-trial",
        "trial_id": "NCT01234567",
        "doctor": "Dr. M. Costa",
        "notes": "Two follow-up visits.",
    }


def with_quotes(
    client: FlaskClient, coordinator: Any, portugal: Any, add_clinics: bool = True, **overrides: Any
) -> tuple[QuoteRequest, int, int]:
    """A request whose two clinics quoted; the first quote was sent to the patient.

    Returns the request, the sent quote's id and the id of the one not sent.
    """
    request = routed(portugal, clinics=2, add_clinics=add_clinics, **overrides)
    ids = []
    for invitation, price in zip(invited(request), (12000, 15000), strict=True):
        response = client.post(
            f"{CLINIC_API}/{invitations.link_token(invitation)}/quote", json=quote_body(price)
        )
        assert response.status_code == 201
        ids.append(response.get_json()["quote_id"])
    response = client.post(
        f"/api/v1/quote-requests/{request.reference}/quotes/send",
        json={"quote_ids": [ids[0]]},
        headers=coordinator.headers,
    )
    assert response.status_code == 200
    db.session.expire_all()
    return db.session.get_one(QuoteRequest, request.id), ids[0], ids[1]


def text_of(notification: Notification) -> str:
    """Both parts of a recorded email, decoded (the stored bytes are quoted-printable)."""
    message = message_from_string(notification.mime, policy=default)
    return "\n".join(
        part.get_content() for part in message.walk() if part.get_content_maintype() == "text"
    )


def notifications_of(request: QuoteRequest, kind: str) -> list[Notification]:
    return list(
        db.session.execute(
            db.select(Notification)
            .where(Notification.quote_request_id == request.id, Notification.kind == kind)
            .order_by(Notification.id)
        ).scalars()
    )


def events_of(request: QuoteRequest, type_: str) -> list[Event]:
    return list(
        db.session.execute(
            db.select(Event)
            .where(Event.quote_request_id == request.id, Event.type == type_)
            .order_by(Event.id)
        ).scalars()
    )
