"""The first-response SLA alert: one email to the coordinators per late request, no more."""

from __future__ import annotations

import importlib
from datetime import timedelta

from quote_service.extensions import db
from quote_service.models import Event, Notification, OutboxMessage, QuoteRequest, utcnow
from quote_service.services import notifications, pipeline
from quote_service.services.sla import alert_sla_breaches
from tests.routing_fixtures import received_row, submit
from worker.schedule import BEAT_SCHEDULE

COORDINATORS = "coordinators@quote-service.example"


def late_request(app, *, status: str | None = None, route: bool = True, **fields) -> QuoteRequest:
    """A request created just past the SLA, routed unless told otherwise."""
    request = submit(destination="BE", condition="stroke", **fields)
    if route:
        pipeline.process_received(received_row(request).id)
    request = db.session.get_one(QuoteRequest, request.id)
    if status is not None:
        request.status = status
    hours = app.config["SLA_FIRST_RESPONSE_HOURS"]
    request.created_at = utcnow() - timedelta(hours=hours, minutes=1)
    db.session.commit()
    return request


def sla_alerts(request: QuoteRequest | None = None) -> list[Notification]:
    query = db.select(Notification).where(Notification.kind == "sla_alert")
    if request is not None:
        query = query.where(Notification.quote_request_id == request.id)
    return list(db.session.execute(query.order_by(Notification.id)).scalars())


def event_types(request: QuoteRequest) -> list[str]:
    return list(
        db.session.execute(
            db.select(Event.type).where(Event.quote_request_id == request.id).order_by(Event.id)
        ).scalars()
    )


def test_each_breached_request_is_alerted_once_over_two_runs(app, app_context):
    routed = late_request(app)
    received = late_request(app, route=False)
    unroutable = late_request(app, status="unroutable")

    assert alert_sla_breaches() == 3
    assert alert_sla_breaches() == 0
    db.session.expire_all()
    for request in (routed, received, unroutable):
        [alert] = sla_alerts(request)
        assert alert.recipient == COORDINATORS
        assert alert.dedupe_key == f"sla_alert:{request.id}"
        assert event_types(request).count("sla_breached") == 1
    event = db.session.execute(db.select(Event).where(Event.type == "sla_breached")).scalars()
    assert {e.actor for e in event} == {"system"}


def test_requests_in_review_or_closed_are_not_alerted(app, app_context):
    for status in ("in_review", "quoted", "closed", "rejected", "withdrawn", "spam"):
        late_request(app, status=status)
    assert alert_sla_breaches() == 0
    assert sla_alerts() == []


def test_fresh_requests_are_not_alerted(app, app_context):
    request = submit(destination="BE", condition="stroke")
    hours = app.config["SLA_FIRST_RESPONSE_HOURS"]
    request.created_at = utcnow() - timedelta(hours=hours) + timedelta(minutes=5)
    db.session.commit()
    assert alert_sla_breaches() == 0
    assert sla_alerts() == []
    # The same request is late once the SLA has run out.
    assert alert_sla_breaches(now=utcnow() + timedelta(minutes=10)) == 1


def test_the_alert_is_queued_and_sent_without_patient_data(app, app_context, smtp):
    request = late_request(
        app, full_name="Wilhelmina Vandersteen", email="wilhelmina.v@example.org"
    )
    assert alert_sla_breaches() == 1
    [alert] = sla_alerts(request)
    row = db.session.execute(
        db.select(OutboxMessage).where(
            OutboxMessage.topic == "notification.send",
            OutboxMessage.payload["notification_id"].as_integer() == alert.id,
        )
    ).scalar_one()
    assert row.completed_at is None

    assert notifications.deliver(row.id) == "sent"
    [received] = smtp.to(COORDINATORS)
    assert received.recipients == [COORDINATORS]
    assert request.reference in received.message["Subject"]
    for part in (received.text(), received.html()):
        assert request.reference in part
        assert "Belgium" in part
    raw = received.raw.decode()
    for personal in ("Wilhelmina", "Vandersteen", "wilhelmina.v", "example.org"):
        assert personal not in raw
    assert "sla_alert_sent" in event_types(request)


def test_the_beat_schedule_names_a_registered_task(monkeypatch, tmp_path):
    # Importing `worker` builds its app from the environment: keep it off instance/.
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'beat.sqlite3'}")
    import worker

    worker = importlib.reload(worker)
    assert worker.celery.conf.beat_schedule == BEAT_SCHEDULE
    assert BEAT_SCHEDULE["check-sla"]["task"] in worker.celery.tasks
    assert BEAT_SCHEDULE["check-sla"]["schedule"] == 300.0
