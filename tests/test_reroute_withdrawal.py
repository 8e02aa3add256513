"""A reroute withdraws the first clinic: it is told once, by the reference only, to delete what
it received; a clinic that never got the request is told nothing."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, timedelta
from email import message_from_string
from email.policy import default
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from quote_service.extensions import db
from quote_service.models import (
    Event,
    Invitation,
    Notification,
    OutboxMessage,
    Provider,
    QuoteRequest,
)
from quote_service.services import invitations, notifications, pipeline
from tests.conftest import Caller
from tests.routing_fixtures import received_row, submit
from tests.support.polling import wait_until
from tests.support.servers import Server
from tests.support.smtp import SmtpSink
from tests.test_worker_pipeline import all_outbox_done, pipeline_app, running_worker

INTAKE = "/api/v1/quote-requests"
CLINIC_API = "/api/v1/clinic/invitations"
LINK = re.compile(r"/clinic/invitations/([A-Za-z0-9_-]{43})")
PATIENT = {
    "full_name": "Rita Fernandes",
    "email": "rita.fernandes@example.org",
    "phone": "+351 912 000 111",
    "message": "Stroke in 2024, speech therapy since.",
}
# Nothing of these may reach a withdrawn clinic's notice.
PATIENT_TRACES = ("Rita", "Fernandes", "rita.fernandes", "912", "speech", "stroke", "2024")
SUBJECTS = {
    "en": "Withdrawn: request",
    "fr": "Retrait : demande",
    "nl": "Ingetrokken: aanvraag",
    "de": "Zurückgezogen: Anfrage",
}


def provider_id_of(slug: str) -> int:
    return db.session.execute(db.select(Provider.id).where(Provider.slug == slug)).scalar_one()


def reroute(client: FlaskClient, coordinator: Caller, reference: str, provider_id: int) -> Any:
    response = client.post(
        f"{INTAKE}/{reference}/route",
        json={"provider_id": provider_id, "note": "The patient asked for this clinic."},
        headers=coordinator.headers,
    )
    assert response.status_code == 200, response.get_json()
    return response


# --- End to end: a real worker, Redis, PostgreSQL and SMTP server ---------------------


@pytest.fixture
def rerouting_app(
    postgres: Server, redis_server: Server, smtp: SmtpSink, make_app, portugal
) -> Iterator[Flask]:
    with redis.Redis.from_url(redis_server.url) as client:
        client.flushdb()
    portugal("alfa", weight=9)
    portugal("bravo", weight=5)
    app = pipeline_app(make_app, postgres.url, redis_server.url, smtp, QUOTE_FANOUT=1)
    with running_worker(app):
        yield app


def test_after_a_reroute_the_first_clinic_gets_one_notice_without_the_patient(
    rerouting_app: Flask, smtp: SmtpSink, coordinator: Caller
):
    client = rerouting_app.test_client()
    body = {
        **PATIENT,
        "country_of_residence": "PT",
        "preferred_language": "en",
        "condition": "stroke",
        "destination": "PT",
        "consent_privacy": True,
    }
    created = client.post(INTAKE, json=body)
    assert created.status_code == 201
    reference = created.get_json()["reference"]
    assert wait_until(
        lambda: len(smtp.to("alfa@clinic.test.example")) == 1 and all_outbox_done(rerouting_app)
    )
    [invitation_email] = smtp.to("alfa@clinic.test.example")
    [alfa_token] = set(LINK.findall(invitation_email.text()))
    with rerouting_app.app_context():
        bravo = provider_id_of("bravo")
        db.session.remove()

    reroute(client, coordinator, reference, bravo)

    assert wait_until(
        lambda: (
            len(smtp.to("bravo@clinic.test.example")) == 1
            and len(smtp.to("alfa@clinic.test.example")) == 2
            and all_outbox_done(rerouting_app)
        )
    )
    notices = [
        email
        for email in smtp.to("alfa@clinic.test.example")
        if email.message["Subject"].startswith(SUBJECTS["en"])
    ]
    assert len(notices) == 1
    [notice] = notices
    assert notice.message["Subject"] == f"Withdrawn: request {reference}"
    text, html = notice.text(), notice.html()
    assert reference in text and reference in html
    assert "delete" in text
    for trace in PATIENT_TRACES:
        assert trace.lower() not in text.lower(), trace
        assert trace.lower() not in html.lower(), trace
        assert trace.lower() not in notice.message["Subject"].lower(), trace
    # The first clinic's link is closed; the chosen clinic's works.
    gone = client.get(f"{CLINIC_API}/{alfa_token}")
    assert gone.status_code == 410
    assert gone.get_json()["error"]["code"] == "invitation_closed"
    [bravo_email] = smtp.to("bravo@clinic.test.example")
    [bravo_token] = set(LINK.findall(bravo_email.text()))
    assert client.get(f"{CLINIC_API}/{bravo_token}").get_json()["status"] == "open"
    with rerouting_app.app_context():
        kinds = [
            (n.kind, n.recipient, n.status)
            for n in db.session.execute(
                db.select(Notification)
                .where(Notification.kind == "withdrawal_notice")
                .order_by(Notification.id)
            ).scalars()
        ]
        db.session.remove()
    assert kinds == [("withdrawal_notice", "alfa@clinic.test.example", "sent")]
    detail = client.get(f"{INTAKE}/{reference}", headers=coordinator.headers).get_json()
    types = [e["type"] for e in detail["timeline"]]
    assert "invitation_withdrawn" in types and "withdrawal_notice_sent" in types


# --- The service, step by step (deliveries through the real SMTP sink) ----------------


def routed_between_two(portugal: Any, first_language: str = "en") -> QuoteRequest:
    # The patient writes in English; the clinic's first language is its emails'.
    portugal("a", weight=9, languages=tuple(dict.fromkeys((first_language, "en"))))
    portugal("b", weight=5)
    request = submit(**PATIENT)
    pipeline.process_received(received_row(request).id)
    return db.session.get_one(QuoteRequest, request.id)


def deliver_pending(request: QuoteRequest) -> None:
    """What the worker does with the request's emails still to send."""
    ids = db.select(Notification.id).where(Notification.quote_request_id == request.id)
    rows = db.session.execute(
        db.select(OutboxMessage.id)
        .where(
            OutboxMessage.topic == "notification.send",
            OutboxMessage.completed_at.is_(None),
            OutboxMessage.payload["notification_id"].as_integer().in_(ids),
        )
        .order_by(OutboxMessage.id)
    ).scalars()
    for row_id in list(rows):
        notifications.deliver(row_id)
    db.session.expire_all()


def first_invitation(request: QuoteRequest) -> Invitation:
    [invitation] = invitations.invitations_of(request.id)
    return invitation


def notices_of(request: QuoteRequest) -> list[Notification]:
    return list(
        db.session.execute(
            db.select(Notification)
            .where(
                Notification.quote_request_id == request.id,
                Notification.kind == "withdrawal_notice",
            )
            .order_by(Notification.id)
        ).scalars()
    )


def withdrawn_events(request: QuoteRequest) -> list[Event]:
    return list(
        db.session.execute(
            db.select(Event).where(
                Event.quote_request_id == request.id, Event.type == "invitation_withdrawn"
            )
        ).scalars()
    )


def text_of(notification: Notification) -> str:
    message = message_from_string(notification.mime, policy=default)
    return "\n".join(
        part.get_content() for part in message.walk() if part.get_content_maintype() == "text"
    )


@pytest.mark.parametrize("language", ["en", "fr", "nl", "de"])
def test_the_notice_is_in_the_clinics_language(
    client: FlaskClient, portugal, coordinator: Caller, smtp: SmtpSink, language: str
):
    request = routed_between_two(portugal, first_language=language)
    first = first_invitation(request)
    deliver_pending(request)
    assert len(smtp.to("a@clinic.test.example")) == 1

    reroute(client, coordinator, request.reference, provider_id_of("b"))
    db.session.expire_all()
    [notice] = notices_of(request)
    assert notice.language == language
    assert notice.subject == f"{SUBJECTS[language]} {request.reference}"
    text = text_of(notice)
    assert request.reference in text
    for trace in PATIENT_TRACES:
        assert trace.lower() not in text.lower(), trace
    assert db.session.get_one(Invitation, first.id).status == "withdrawn"
    [event] = withdrawn_events(request)
    assert event.data["notified"] is True and event.data["provider_id"] == first.provider_id

    deliver_pending(request)
    invitation_email, notice_email = smtp.to("a@clinic.test.example")
    assert notice_email.message["Subject"] == notice.subject


def test_a_clinic_rerouted_before_its_invitation_went_out_gets_nothing(
    client: FlaskClient, portugal, coordinator: Caller, smtp: SmtpSink
):
    request = routed_between_two(portugal)
    first = first_invitation(request)
    # The invitation email is still waiting in the outbox when the coordinator reroutes.
    reroute(client, coordinator, request.reference, provider_id_of("b"))
    db.session.expire_all()
    assert notices_of(request) == []
    [event] = withdrawn_events(request)
    assert event.data["notified"] is False
    assert db.session.get_one(Invitation, first.id).status == "withdrawn"

    deliver_pending(request)
    assert smtp.to("a@clinic.test.example") == []
    assert len(smtp.to("b@clinic.test.example")) == 1
    [cancelled] = [
        n
        for n in db.session.execute(
            db.select(Notification).where(
                Notification.quote_request_id == request.id, Notification.kind == "provider"
            )
        ).scalars()
        if n.recipient == "a@clinic.test.example"
    ]
    assert cancelled.status == "suppressed"


def test_a_clinic_that_quoted_keeps_its_invitation_and_is_not_told_to_delete(
    client: FlaskClient, portugal, coordinator: Caller, smtp: SmtpSink
):
    request = routed_between_two(portugal)
    first = first_invitation(request)
    deliver_pending(request)
    token = invitations.link_token(first)
    quoted = client.post(
        f"{CLINIC_API}/{token}/quote",
        json={
            "price_min": 9000,
            "currency": "EUR",
            "evidence": "experimental",
            "valid_until": (date.today() + timedelta(days=30)).isoformat(),
        },
    )
    assert quoted.status_code == 201, quoted.get_json()

    reroute(client, coordinator, request.reference, provider_id_of("b"))
    db.session.expire_all()
    assert db.session.get_one(Invitation, first.id).status == "quoted"
    assert notices_of(request) == []
    assert withdrawn_events(request) == []
