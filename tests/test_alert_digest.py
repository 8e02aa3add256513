"""Alerts the public form can cause reach the coordinators capped and grouped.

A flood of unroutable (or, a day later, late) requests sends the first few
alerts one by one, then one digest per interval naming how many and which.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from quote_service.extensions import db
from quote_service.models import Event, Notification, OutboxMessage, QuoteRequest, utcnow
from quote_service.services import alerts, notifications, pipeline
from quote_service.services.sla import alert_sla_breaches
from tests.routing_fixtures import received_row, submit

COORDINATORS = "coordinators@quote-service.example"
CAP = 2


@pytest.fixture(autouse=True)
def small_cap(app, monkeypatch):
    monkeypatch.setitem(app.config, "COORDINATOR_ALERTS_PER_INTERVAL", CAP)
    monkeypatch.setitem(app.config, "COORDINATOR_ALERT_INTERVAL_MINUTES", 15)


def unroutable_flood(count: int) -> list[QuoteRequest]:
    """`count` requests to a destination with no clinic, each routed (and so unroutable)."""
    flood = []
    for number in range(count):
        request = submit(email=f"flood.{number}@example.org", full_name=f"Flood Patient {number}")
        assert pipeline.process_received(received_row(request).id) == "unroutable"
        flood.append(request)
    return flood


def alerts_of(kind: str) -> list[Notification]:
    return list(
        db.session.execute(
            db.select(Notification).where(Notification.kind == kind).order_by(Notification.id)
        ).scalars()
    )


def send_row(notification: Notification) -> OutboxMessage | None:
    return db.session.execute(
        db.select(OutboxMessage).where(
            OutboxMessage.topic == "notification.send",
            OutboxMessage.payload["notification_id"].as_integer() == notification.id,
        )
    ).scalar_one_or_none()


def deliver_everything_to_the_coordinators() -> None:
    for notification in db.session.execute(
        db.select(Notification).where(
            Notification.kind.in_((*alerts.ALERT_KINDS, alerts.DIGEST_KIND))
        )
    ).scalars():
        row = send_row(notification)
        if row is not None and row.completed_at is None:
            notifications.deliver(row.id)


def test_an_unroutable_flood_sends_the_cap_then_one_digest(portugal, smtp):
    flood = unroutable_flood(CAP + 3)
    db.session.expire_all()

    sent_alone, grouped = alerts_of("unroutable_alert")[:CAP], alerts_of("unroutable_alert")[CAP:]
    assert [a.status for a in sent_alone] == ["pending"] * CAP
    assert all(send_row(a) is not None for a in sent_alone)
    assert [a.status for a in grouped] == ["grouped"] * 3
    assert all(send_row(a) is None for a in grouped)
    grouped_events = db.session.execute(
        db.select(Event.quote_request_id).where(Event.type == "unroutable_alert_grouped")
    ).scalars()
    assert sorted(grouped_events) == [r.id for r in flood[CAP:]]

    assert alerts.send_digest() == 3
    db.session.expire_all()
    [digest] = alerts_of("alert_digest")
    assert digest.quote_request_id is None
    assert [a.status for a in alerts_of("unroutable_alert")[CAP:]] == ["digested"] * 3

    deliver_everything_to_the_coordinators()
    to_coordinators = smtp.to(COORDINATORS)
    assert len(to_coordinators) == CAP + 1  # not one per request
    [digest_email] = [m for m in to_coordinators if m.message["Message-ID"] == digest.message_id]
    assert digest_email.message["Subject"].startswith("3 more alerts")
    for part in (digest_email.text(), digest_email.html()):
        assert "Could not be routed to a clinic: 3" in part
        for request in flood[CAP:]:
            assert request.reference in part
        for request in flood[:CAP]:
            assert request.reference not in part
    raw = digest_email.raw.decode()
    for personal in ("Flood Patient", "flood.", "example.org"):
        assert personal not in raw
    assert db.session.get_one(Notification, digest.id).status == "sent"


def test_one_digest_per_interval(portugal, smtp):
    unroutable_flood(CAP + 1)
    assert alerts.send_digest() == 1

    unroutable_flood(2)  # still within the interval: grouped, held for the next digest
    assert alerts.send_digest() == 0
    assert alerts.send_digest(now=utcnow() + timedelta(minutes=5)) == 0
    assert alerts.send_digest(now=utcnow() + timedelta(minutes=16)) == 2
    assert len(alerts_of("alert_digest")) == 2
    assert alerts.send_digest(now=utcnow() + timedelta(minutes=40)) == 0  # nothing left


def test_the_cap_counts_per_interval(portugal):
    unroutable_flood(CAP)
    assert alerts.over_cap("unroutable_alert")
    assert not alerts.over_cap("unroutable_alert", now=utcnow() + timedelta(minutes=16))
    # Another kind has a cap of its own: a flood of one does not silence the other.
    assert not alerts.over_cap("sla_alert")


def test_sla_alerts_of_a_flood_are_capped_and_digested(app, portugal, smtp):
    flood = [submit(email=f"late.{n}@example.org") for n in range(CAP + 2)]
    hours = app.config["SLA_FIRST_RESPONSE_HOURS"]
    for request in flood:
        db.session.get_one(QuoteRequest, request.id).created_at = utcnow() - timedelta(
            hours=hours, minutes=1
        )
    db.session.commit()

    assert alert_sla_breaches() == CAP + 2  # every breach recorded, with its event
    statuses = [a.status for a in alerts_of("sla_alert")]
    assert statuses == ["pending"] * CAP + ["grouped"] * 2
    assert alerts.send_digest() == 2
    deliver_everything_to_the_coordinators()
    digests = [m for m in smtp.to(COORDINATORS) if "Past the first-response SLA" in m.text()]
    assert len(digests) == 1
    assert len(smtp.to(COORDINATORS)) == CAP + 1
