"""The routing task sends the emails it queued itself; a run that dies leaves them to the relay."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from quote_service.extensions import db
from quote_service.models import Event, Notification, OutboxMessage, utcnow
from quote_service.services import notifications, outbox, pipeline
from tests.routing_fixtures import received_row, submit
from tests.support.polling import wait_until
from tests.support.statements import statements_counted, writes


class Died(Exception):
    """The worker running the routing died right after its commit."""


def routed_request() -> tuple[int, int]:
    """A received request for BE/stroke (an acknowledgement, one clinic email): its id, its row."""
    request = submit(destination="BE", condition="stroke", email="held@example.org")
    row = received_row(request)
    return request.id, row.id


def send_rows(request_id: int) -> list[OutboxMessage]:
    db.session.expire_all()
    ids = db.select(Notification.id).where(Notification.quote_request_id == request_id)
    return list(
        db.session.execute(
            db.select(OutboxMessage)
            .where(
                OutboxMessage.topic == outbox.TOPIC_SEND,
                OutboxMessage.payload["notification_id"].as_integer().in_(ids),
            )
            .order_by(OutboxMessage.id)
        ).scalars()
    )


def attempts(request_id: int) -> list[tuple[str, int]]:
    db.session.expire_all()
    rows = db.session.execute(
        db.select(Notification.status, Notification.attempts)
        .where(Notification.quote_request_id == request_id)
        .order_by(Notification.id)
    ).all()
    return [tuple(row) for row in rows]


def available_at_elsewhere(outbox_id: int):
    with db.engine.connect() as other:
        return other.execute(
            db.select(OutboxMessage.available_at).where(OutboxMessage.id == outbox_id)
        ).scalar_one()


def test_the_routing_keeps_the_lease_of_every_email_it_still_holds_while_one_is_slow(
    app, app_context, smtp
):
    request_id, row_id = routed_request()
    db.session.commit()
    outcome: list[str] = []

    def run() -> None:
        with app.app_context():
            outcome.append(pipeline.process_received(row_id, "run-1", send=True))
            db.session.remove()

    smtp.stall_next()  # the acknowledgement hangs at the SMTP server
    routing = threading.Thread(target=run)
    routing.start()
    try:
        assert smtp.wait_stalled(10)
        _, provider = send_rows(request_id)
        first = available_at_elsewhere(provider.id)
        # Renewed every third of the (5 s) lease while the acknowledgement waits.
        assert wait_until(lambda: available_at_elsewhere(provider.id) > first, timeout=10)
    finally:
        smtp.release()
        routing.join(10)
    assert outcome == ["routed"]
    assert attempts(request_id) == [("sent", 1), ("sent", 1)]
    assert len(smtp.received) == 2


def test_the_routing_sends_its_emails_itself_never_through_the_relay(app_context, smtp):
    request_id, row_id = routed_request()
    assert pipeline.process_received(row_id, "run-1", send=True) == "routed"
    rows = send_rows(request_id)
    assert len(rows) == 2
    assert all(row.completed_at is not None and row.published_at is None for row in rows)
    assert [r.recipients for r in smtp.received][0] == [
        "held@example.org"
    ]  # the acknowledgement first
    assert len(smtp.received) == 2
    statuses = db.session.execute(
        db.select(Notification.status).where(Notification.quote_request_id == request_id)
    ).scalars()
    assert set(statuses) == {"sent"}


def test_without_send_the_emails_wait_for_the_relay(app_context, smtp):
    request_id, row_id = routed_request()
    pipeline.process_received(row_id)
    rows = send_rows(request_id)
    assert [(row.holder, row.completed_at) for row in rows] == [(None, None)] * 2
    assert smtp.received == []


def test_emails_held_by_a_routing_that_died_go_out_through_the_relay_after_its_lease(
    app_context, smtp, monkeypatch: pytest.MonkeyPatch
):
    request_id, row_id = routed_request()

    def die(outbox_ids: list[int], holder: str) -> None:
        raise Died

    monkeypatch.setattr(notifications, "send_held", die)
    with pytest.raises(Died):
        pipeline.process_received(row_id, "run-1", send=True)
    monkeypatch.undo()

    rows = send_rows(request_id)
    assert [row.holder for row in rows] == ["run-1", "run-1"]  # held, committed with the routing
    assert all(row.available_at > utcnow() for row in rows)
    # Recorded as the attempt the run was about to make.
    assert attempts(request_id) == [("sending", 1), ("sending", 1)]
    published: list[int] = []
    outbox.relay_once(publish=lambda task, ids, broker, rids: published.extend(ids))
    assert published == []  # the lease keeps the relay away
    assert notifications.deliver(rows[0].id, "another-run") == "in-flight"

    for row in rows:
        row.available_at = utcnow() - timedelta(seconds=1)  # the lease ran out
    db.session.commit()
    outbox.relay_once(publish=lambda task, ids, broker, rids: published.extend(ids))
    assert published == [row.id for row in rows]
    for row in rows:
        assert notifications.deliver(row.id, "another-run") == "sent"
    rows = send_rows(request_id)
    assert [row.failures for row in rows] == [1, 1]  # the dead run counted, as any other
    assert len(smtp.received) == 2
    assert attempts(request_id) == [("sent", 2), ("sent", 2)]


def test_a_deferred_acknowledgement_hands_the_other_emails_back_to_the_relay_at_once(
    app_context, smtp
):
    request_id, row_id = routed_request()
    smtp.reply_next("421 4.3.2 Service not available, try later")
    assert pipeline.process_received(row_id, "run-1", send=True) == "routed"
    ack, provider = send_rows(request_id)
    assert smtp.received == []  # the acknowledgement was refused; the clinic email not tried
    assert (ack.holder, ack.completed_at is None, ack.available_at > utcnow()) == (None, True, True)
    assert (provider.holder, provider.published_at) == (None, None)
    assert provider.available_at <= utcnow()
    # The acknowledgement's refused attempt counts; the clinic email was never tried.
    assert attempts(request_id) == [("pending", 1), ("pending", 0)]
    published: list[int] = []
    outbox.relay_once(publish=lambda task, ids, broker, rids: published.extend(ids))
    assert published == [provider.id]


def test_a_routing_writes_its_invitations_emails_and_their_rows_one_insert_per_table(
    app, app_context, portugal
):
    for slug in ("lisboa", "porto", "faro"):
        portugal(slug)
    app.config["QUOTE_FANOUT"] = 3
    try:
        request = submit(email="three@example.org")
        row_id = received_row(request).id
        db.session.commit()
        with statements_counted(db.engine) as statements:
            assert pipeline.process_received(row_id) == "routed"
    finally:
        app.config["QUOTE_FANOUT"] = 1
    inserts = [s.split()[2] for s in writes(statements) if s.lstrip().startswith("INSERT")]
    # Three invitations, four emails (the acknowledgement and each clinic's), their rows.
    assert inserts.count("invitation") == 1
    assert inserts.count("notification") == 1
    assert inserts.count("outbox_message") == 1
    db.session.expire_all()
    emails = db.session.execute(
        db.select(Notification.kind, Notification.recipient)
        .where(Notification.quote_request_id == request.id)
        .order_by(Notification.id)
    ).all()
    assert [kind for kind, _ in emails] == ["acknowledgement"] + ["provider"] * 3
    rows = send_rows(request.id)
    # Queued in the order recorded: the acknowledgement's row first, then each clinic's.
    queued = [row.payload["notification_id"] for row in rows]
    ids = db.session.execute(
        db.select(Notification.id)
        .where(Notification.quote_request_id == request.id)
        .order_by(Notification.id)
    ).scalars()
    assert queued == list(ids)
    sent_events = db.session.execute(
        db.select(Event.type, Event.data).where(
            Event.quote_request_id == request.id, Event.type == "invitation_sent"
        )
    ).all()
    assert len(sent_events) == 3
