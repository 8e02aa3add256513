"""International email addresses, end to end: taken at the door, routed, sent or visibly failed.

IDN domains travel in their ASCII (IDNA) form; a local part that is not
ASCII travels with SMTPUTF8 when the server offers it, and is `failed`
(visibly, never retried) when it does not. Whatever else breaks while
building or sending an email is recorded and counted, never a crashed task.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from quote_service.extensions import db
from quote_service.models import Event, Notification, OutboxMessage, QuoteRequest, utcnow
from quote_service.services import notifications, pipeline
from tests.payloads import minimal_body
from tests.routing_fixtures import received_row, submit
from tests.support.servers import free_port
from tests.support.smtp import SmtpSink

URL = "/api/v1/quote-requests"


@pytest.fixture
def utf8_smtp(app, monkeypatch) -> Iterator[SmtpSink]:
    """A second real SMTP server, this one offering SMTPUTF8; the app sends to it."""
    sink = SmtpSink(free_port(), smtputf8=True)
    sink.start()
    monkeypatch.setitem(app.config, "SMTP_PORT", sink.port)
    yield sink
    sink.stop()


def post_and_route(client, email: str) -> QuoteRequest:
    response = client.post(URL, json=minimal_body(email=email, destination="BE"))
    assert response.status_code == 201, response.get_json()
    request = db.session.execute(
        db.select(QuoteRequest).where(QuoteRequest.reference == response.get_json()["reference"])
    ).scalar_one()
    pipeline.process_received(received_row(request).id)
    db.session.expire_all()
    return db.session.get_one(QuoteRequest, request.id)


def acknowledgement_of(request: QuoteRequest) -> tuple[Notification, OutboxMessage]:
    ack = db.session.execute(
        db.select(Notification).where(
            Notification.quote_request_id == request.id, Notification.kind == "acknowledgement"
        )
    ).scalar_one()
    row = db.session.execute(
        db.select(OutboxMessage).where(
            OutboxMessage.topic == "notification.send",
            OutboxMessage.payload["notification_id"].as_integer() == ack.id,
        )
    ).scalar_one()
    return ack, row


def event_types(request_id: int) -> list[str]:
    return list(
        db.session.execute(
            db.select(Event.type).where(Event.quote_request_id == request_id).order_by(Event.id)
        ).scalars()
    )


@pytest.mark.parametrize(
    "email", ["jän.peeters@example.org", "josé@example.org", "иван.петров@example.org"]
)
def test_a_non_ascii_local_part_is_routed_and_sent_with_smtputf8(
    app_context, client, utf8_smtp, email
):
    request = post_and_route(client, email)
    assert request.status == "routed"
    ack, row = acknowledgement_of(request)
    assert ack.status == "pending"

    assert notifications.deliver(row.id) == "sent"
    [received] = utf8_smtp.received
    assert received.recipients == [email]
    assert received.message["To"] == email
    assert request.reference in received.text()


def test_without_smtputf8_on_the_server_the_email_fails_visibly(app_context, client, smtp):
    request = post_and_route(client, "jän.peeters@example.org")
    assert request.status == "routed"
    ack, row = acknowledgement_of(request)

    assert notifications.deliver(row.id) == "failed"
    db.session.expire_all()
    ack = db.session.get_one(Notification, ack.id)
    assert ack.status == "failed"
    assert ack.attempts == 1
    assert "SMTPUTF8" in ack.last_error
    assert db.session.get_one(OutboxMessage, row.id).completed_at is not None
    assert "acknowledgement_failed" in event_types(request.id)
    assert smtp.received == []


def test_an_idn_domain_is_sent_in_its_ascii_form(app_context, client, smtp):
    request = post_and_route(client, "jan@exämple.org")
    ack, row = acknowledgement_of(request)
    assert ack.recipient == "jan@exämple.org"  # stored, and shown, as typed

    assert notifications.deliver(row.id) == "sent"
    [received] = smtp.received
    assert received.recipients == ["jan@xn--exmple-cua.org"]
    assert received.message["To"] == "jan@xn--exmple-cua.org"
    assert received.raw.isascii()


def test_an_email_that_cannot_be_built_fails_and_routing_goes_on(portugal):
    portugal("only")
    # Stored before the intake checked it as it does now (or corrected by hand).
    request = submit(email="not-an-address")

    assert pipeline.process_received(received_row(request).id) == "routed"
    db.session.expire_all()
    assert db.session.get_one(QuoteRequest, request.id).status == "routed"
    ack = db.session.execute(
        db.select(Notification).where(
            Notification.quote_request_id == request.id, Notification.kind == "acknowledgement"
        )
    ).scalar_one()
    assert ack.status == "failed"
    assert ack.last_error.startswith("could not build the message")
    assert "acknowledgement_failed" in event_types(request.id)
    # The routing's own outbox row is done: it is not re-published every lease.
    assert received_row(request).completed_at is not None
    provider_email = db.session.execute(
        db.select(Notification).where(
            Notification.quote_request_id == request.id, Notification.kind == "provider"
        )
    ).scalar_one()
    assert provider_email.status == "pending"


def test_an_unexpected_error_while_sending_counts_backs_off_and_ends_failed(
    app, app_context, client, smtp
):
    request = post_and_route(client, "jan.peeters@example.org")
    ack, row = acknowledgement_of(request)
    # An address the sender cannot use, however it got there.
    ack.recipient = "not-an-address"
    db.session.commit()

    assert notifications.deliver(row.id) == "deferred"
    db.session.expire_all()
    ack = db.session.get_one(Notification, ack.id)
    row = db.session.get_one(OutboxMessage, row.id)
    assert (ack.status, ack.attempts) == ("pending", 1)
    assert ack.last_error.startswith("unexpected: ValueError")
    assert row.completed_at is None
    assert row.available_at > utcnow()  # backed off

    ack.attempts = app.config["NOTIFICATION_MAX_ATTEMPTS"] - 1
    row.available_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert notifications.deliver(row.id) == "failed"
    db.session.expire_all()
    ack = db.session.get_one(Notification, ack.id)
    assert ack.status == "failed"
    assert ack.attempts == app.config["NOTIFICATION_MAX_ATTEMPTS"]
    assert db.session.get_one(OutboxMessage, row.id).completed_at is not None
    assert event_types(request.id).count("acknowledgement_deferred") == 1
    assert "acknowledgement_failed" in event_types(request.id)
    assert smtp.received == []
