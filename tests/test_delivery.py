"""Delivery over real SMTP (aiosmtpd): retries on 4xx, none on 5xx, never twice."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from sqlalchemy import event

from quote_service.extensions import db
from quote_service.models import Event, Notification, OutboxMessage, utcnow
from quote_service.services import notifications, outbox, pipeline
from tests.routing_fixtures import received_row, submit
from tests.support.servers import free_port
from tests.support.statements import statements_counted


def acknowledgement_row() -> tuple[Notification, OutboxMessage]:
    """Route a fresh request and return its acknowledgement and that email's outbox row."""
    request = submit(destination="BE", condition="stroke")
    pipeline.process_received(received_row(request).id)
    ack = db.session.execute(
        db.select(Notification).where(
            Notification.quote_request_id == request.id,
            Notification.kind == "acknowledgement",
        )
    ).scalar_one()
    row = db.session.execute(
        db.select(OutboxMessage).where(
            OutboxMessage.topic == "notification.send",
            OutboxMessage.payload["notification_id"].as_integer() == ack.id,
        )
    ).scalar_one()
    return ack, row


def reload(*objects) -> None:
    db.session.expire_all()
    for obj in objects:
        db.session.refresh(obj)


def events(request_id: int) -> list[Event]:
    return list(
        db.session.execute(
            db.select(Event).where(Event.quote_request_id == request_id).order_by(Event.id)
        ).scalars()
    )


def event_types(request_id: int) -> list[str]:
    return list(
        db.session.execute(
            db.select(Event.type).where(Event.quote_request_id == request_id).order_by(Event.id)
        ).scalars()
    )


def test_a_sent_email_is_recorded_once(app_context, smtp):
    ack, row = acknowledgement_row()
    assert notifications.deliver(row.id) == "sent"
    reload(ack, row)
    assert ack.status == "sent"
    assert ack.attempts == 1
    assert ack.sent_at is not None
    assert row.completed_at is not None
    [received] = smtp.received
    assert received.recipients == [ack.recipient]
    assert received.message["Message-ID"] == ack.message_id
    assert "acknowledgement_sent" in event_types(ack.quote_request_id)


@contextmanager
def commits_counted() -> Iterator[list[str]]:
    """The COMMITs the app's engine sends meanwhile (one entry each)."""
    commits: list[str] = []

    def count(connection) -> None:
        commits.append("COMMIT")

    event.listen(db.engine, "commit", count)
    try:
        yield commits
    finally:
        event.remove(db.engine, "commit", count)


def start_delivery(app, row_id: int, outcome: list[str]) -> threading.Thread:
    """`deliver` of the row by "run-1", started in a thread with a session of its own."""

    def run() -> None:
        with app.app_context():
            outcome.append(notifications.deliver(row_id, "run-1"))
            db.session.remove()

    sender = threading.Thread(target=run)
    sender.start()
    return sender


def test_a_delivery_commits_twice_its_lease_with_sending_then_sent(app, app_context, smtp):
    ack, row = acknowledgement_row()
    ack_id, row_id = ack.id, row.id
    db.session.commit()
    outcome: list[str] = []
    smtp.stall_next()
    with commits_counted() as commits:
        sender = start_delivery(app, row_id, outcome)
        try:
            assert smtp.wait_stalled(10)
            # While the SMTP server holds the email: one COMMIT so far, which
            # made the lease and the `sending` mark visible together.
            assert len(commits) == 1
            assert state_elsewhere(ack_id, row_id) == ("sending", "run-1")
        finally:
            smtp.release()
            sender.join(10)
    assert outcome == ["sent"]
    assert len(commits) == 2
    assert state_elsewhere(ack_id, row_id) == ("sent", None)


def test_the_sent_record_is_one_statement_and_its_commit_on_postgresql(app, app_context, smtp):
    ack, row = acknowledgement_row()
    ack_id, row_id, request_id = ack.id, row.id, ack.quote_request_id
    db.session.commit()
    outcome: list[str] = []
    smtp.stall_next()
    sender = start_delivery(app, row_id, outcome)
    try:
        assert smtp.wait_stalled(10)
    finally:
        # From the email's acceptance on, all the run writes is its `sent` record.
        with statements_counted(db.engine) as statements, commits_counted() as commits:
            smtp.release()
            sender.join(10)
    assert outcome == ["sent"]
    # SQLite has no writes in a CTE: there the record's three writes go one by one.
    assert len(statements) == (1 if db.engine.dialect.name == "postgresql" else 3)
    assert len(commits) == 1
    assert state_elsewhere(ack_id, row_id) == ("sent", None)
    reload(ack, row)
    assert ack.sent_at is not None and ack.last_error is None
    assert row.completed_at is not None
    last = events(request_id)[-1]
    assert last.type == "acknowledgement_sent"
    assert last.data == {"notification_id": ack_id, "kind": "acknowledgement"}
    assert last.actor == "system" and last.note is None


def state_elsewhere(notification_id: int, outbox_id: int) -> tuple[str, str | None]:
    """The notification's status and its row's holder, as another connection sees them."""
    with db.engine.connect() as other:
        status = other.execute(
            db.select(Notification.status).where(Notification.id == notification_id)
        ).scalar_one()
        holder = other.execute(
            db.select(OutboxMessage.holder).where(OutboxMessage.id == outbox_id)
        ).scalar_one()
    return status, holder


def test_a_claim_left_to_the_caller_to_commit_leaves_nothing_when_rolled_back(app_context):
    _, row = acknowledgement_row()
    claimed = outbox.claim(row.id, "run-1", commit=False)
    assert claimed is not None and claimed.holder == "run-1"
    db.session.rollback()  # the run stopped before its first commit
    reload(row)
    assert (row.holder, row.started_at, row.completed_at) == (None, None, None)
    assert outbox.claim(row.id, "run-2") is not None  # the redelivery takes it as new


def test_421_then_success_sends_once(app_context, smtp):
    ack, row = acknowledgement_row()
    smtp.reply_next("421 4.3.2 Service not available, try later")

    assert notifications.deliver(row.id) == "deferred"
    reload(ack, row)
    assert ack.status == "pending"
    assert ack.attempts == 1
    assert ack.last_error.startswith("421")
    assert row.completed_at is None
    assert row.available_at > utcnow()  # due again after a backoff
    assert smtp.received == []

    row.available_at = utcnow() - timedelta(seconds=1)  # the backoff has passed
    db.session.commit()
    assert notifications.deliver(row.id) == "sent"
    reload(ack)
    assert ack.status == "sent"
    assert ack.attempts == 2
    assert len(smtp.to(ack.recipient)) == 1
    assert event_types(ack.quote_request_id)[-2:] == [
        "acknowledgement_deferred",
        "acknowledgement_sent",
    ]


def test_550_is_permanent_and_not_retried(app_context, smtp):
    ack, row = acknowledgement_row()
    smtp.reply_next("550 5.1.1 Mailbox unavailable")

    assert notifications.deliver(row.id) == "failed"
    reload(ack, row)
    assert ack.status == "failed"
    assert ack.attempts == 1
    assert ack.last_error.startswith("550")
    assert row.completed_at is not None  # never published again
    assert notifications.deliver(row.id) == "done-already"
    assert smtp.received == []
    assert "acknowledgement_failed" in event_types(ack.quote_request_id)


def test_retries_are_bounded(app_context, smtp, app):
    ack, row = acknowledgement_row()
    attempts = app.config["NOTIFICATION_MAX_ATTEMPTS"]
    smtp.reply_next(*["451 4.7.1 Greylisted"] * attempts)
    outcomes = []
    for _ in range(attempts):
        outcomes.append(notifications.deliver(row.id))
        row.available_at = utcnow()
        db.session.commit()
    assert outcomes == ["deferred"] * (attempts - 1) + ["failed"]
    reload(ack, row)
    assert (ack.status, ack.attempts) == ("failed", attempts)
    assert row.completed_at is not None


def test_backoff_grows_with_jitter_and_a_cap(app_context, app):
    base = app.config["NOTIFICATION_RETRY_BASE_SECONDS"]
    cap = app.config["NOTIFICATION_RETRY_MAX_SECONDS"]
    for attempts in range(1, 8):
        ceiling = min(cap, base * 2 ** (attempts - 1))
        delays = {notifications.backoff(attempts).total_seconds() for _ in range(20)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(delays) > 1  # jitter


def test_connection_refused_is_retried(app_context, smtp, app):
    ack, row = acknowledgement_row()
    dead_port = free_port()  # nothing listens there
    original = app.config["SMTP_PORT"]
    app.config["SMTP_PORT"] = dead_port
    try:
        assert notifications.deliver(row.id) == "deferred"
    finally:
        app.config["SMTP_PORT"] = original
    reload(ack)
    assert ack.status == "pending"
    assert ack.last_error.startswith("connection")


def test_the_same_delivery_twice_sends_once(app_context, smtp):
    ack, row = acknowledgement_row()
    assert notifications.deliver(row.id) == "sent"
    assert notifications.deliver(row.id) == "done-already"
    # Even a row re-opened by hand does not send a sent notification again.
    row = db.session.get_one(OutboxMessage, row.id)
    row.completed_at = None
    db.session.commit()
    assert notifications.deliver(row.id) == "done-already"
    assert len(smtp.received) == 1


def test_a_notification_being_sent_elsewhere_is_left_alone(app_context, smtp, app):
    ack, row = acknowledgement_row()
    # Another run claimed the row and is sending: its lease is live.
    ack.status = "sending"
    row.holder, row.started_at = "another-run", utcnow()
    row.available_at = utcnow() + timedelta(seconds=app.config["OUTBOX_LEASE_SECONDS"])
    db.session.commit()
    assert notifications.deliver(row.id) == "in-flight"
    assert smtp.received == []
    reload(row)
    assert row.holder == "another-run"  # left alone, lease and all


def test_a_send_whose_run_died_is_sent_again_once_its_lease_ran_out(app_context, smtp):
    ack, row = acknowledgement_row()
    # A worker died mid-send: it never released the row, and its lease ran out.
    ack.status = "sending"
    ack.attempts = 1
    row.holder, row.started_at = "dead-run", utcnow() - timedelta(seconds=40)
    row.available_at = utcnow() - timedelta(seconds=10)
    db.session.commit()
    assert notifications.deliver(row.id) == "sent"
    [received] = smtp.received
    assert received.message["Message-ID"] == ack.message_id  # same message, same id
    reload(ack, row)
    assert (ack.status, ack.attempts) == ("sent", 2)
    assert row.failures == 1  # the run that died counts as a failure of the row
    assert row.holder is None and row.completed_at is not None


def test_a_message_that_fails_every_run_ends_failed_with_an_event_and_is_not_published(
    app_context, smtp, app
):
    from worker.tasks import run_outbox_task

    ack, row = acknowledgement_row()

    def poison(outbox_id: int, holder: str) -> str:
        outbox.claim(outbox_id, holder)
        raise LookupError("a bug this message always meets")

    ack_id, row_id = ack.id, row.id
    for _ in range(app.config["OUTBOX_MAX_FAILURES"]):
        with pytest.raises(LookupError):
            run_outbox_task(poison, row_id)
        row = db.session.get_one(OutboxMessage, row_id)  # the task ended its session
        row.available_at = utcnow()  # its pause has passed
        db.session.commit()
    ack, row = db.session.get_one(Notification, ack_id), db.session.get_one(OutboxMessage, row_id)
    assert row.completed_at is not None and row.failed_at is not None
    assert row.last_error == "LookupError"  # the type only: a message may quote data
    assert (row.failures, ack.status) == (app.config["OUTBOX_MAX_FAILURES"], "failed")
    [failed] = [e for e in events(ack.quote_request_id) if e.type == "acknowledgement_failed"]
    assert failed.actor == "system" and "LookupError" in failed.note
    published = []
    outbox.relay_once(publish=lambda *args: published.extend(args[1]))
    assert row.id not in published
    assert smtp.received == []


def test_a_message_whose_runs_keep_dying_is_given_up(app_context, smtp, app):
    ack, row = acknowledgement_row()
    for attempt in range(app.config["OUTBOX_MAX_FAILURES"] + 1):
        claimed = outbox.claim(row.id, f"run-{attempt}")  # and the run dies
        if claimed is None:
            break
        claimed.available_at = utcnow() - timedelta(seconds=1)  # its lease ran out
        db.session.commit()
    reload(ack, row)
    # The first run, then one per failure: the run that meets the last failure gives up.
    assert attempt == app.config["OUTBOX_MAX_FAILURES"]
    assert row.completed_at is not None and ack.status == "failed"
    assert "acknowledgement_failed" in event_types(ack.quote_request_id)


def test_a_transient_database_error_is_retried_inside_the_task(app_context, smtp):
    from sqlalchemy.exc import OperationalError

    from worker.tasks import run_outbox_task

    ack, row = acknowledgement_row()
    ack_id, row_id = ack.id, row.id
    calls = []

    def flaky(outbox_id: int, holder: str) -> str:
        calls.append(holder)
        if len(calls) < 3:
            raise OperationalError("SELECT 1", {}, Exception("server closed the connection"))
        return notifications.deliver(outbox_id, holder)

    assert run_outbox_task(flaky, row_id) == "sent"
    assert len(set(calls)) == 1  # one task run, one holder, throughout
    ack, row = db.session.get_one(Notification, ack_id), db.session.get_one(OutboxMessage, row_id)
    assert (ack.status, row.failures) == ("sent", 0)
    assert len(smtp.received) == 1
