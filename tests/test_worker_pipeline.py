"""The whole pipeline through a real Celery worker, real Redis and a real SMTP server."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import redis
from celery.contrib.testing.worker import start_worker
from flask import Flask

from quote_service.extensions import db
from quote_service.models import Notification, OutboxMessage
from quote_service.services.catalog import disclaimers_in_scope
from tests.conftest import base_config, smtp_config
from tests.payloads import valid_body
from tests.support.polling import wait_until
from tests.support.servers import Server, start_redis_server
from tests.support.smtp import SmtpSink
from worker.relay import OutboxRelay, OutboxRelayStep

URL = "/api/v1/quote-requests"


def pipeline_app(
    make_app, database_url: str, redis_url: str, sink: SmtpSink, **overrides: Any
) -> Flask:
    app = make_app(base_config(database_url, REDIS_URL=redis_url, **smtp_config(sink), **overrides))
    app.extensions["celery"].steps["worker"].add(OutboxRelayStep)
    return app


@contextmanager
def running_worker(app: Flask) -> Iterator[None]:
    """A real worker (with its outbox relay) consuming from the app's broker."""
    with start_worker(
        app.extensions["celery"],
        pool="solo",
        perform_ping_check=False,
        shutdown_timeout=30,
        loglevel="WARNING",
    ):
        yield


def all_outbox_done(app: Flask) -> bool:
    with app.app_context():
        pending = db.session.execute(
            db.select(db.func.count(OutboxMessage.id)).where(OutboxMessage.completed_at.is_(None))
        ).scalar()
        db.session.remove()
        return pending == 0


def statuses(app: Flask) -> list[tuple[str, str]]:
    with app.app_context():
        rows = db.session.execute(
            db.select(Notification.kind, Notification.status).order_by(Notification.id)
        ).all()
        db.session.remove()
        return [tuple(row) for row in rows]


@pytest.fixture
def worker_app(postgres: Server, redis_server: Server, smtp, make_app) -> Iterator[Flask]:
    with redis.Redis.from_url(redis_server.url) as client:
        client.flushdb()
    app = pipeline_app(make_app, postgres.url, redis_server.url, smtp)
    with running_worker(app):
        yield app
    # The relay stops with its worker; a leftover would publish other tests' rows.
    assert "outbox-relay" not in [thread.name for thread in threading.enumerate()]


def test_a_post_gives_one_acknowledgement_and_one_provider_email(worker_app: Flask, app, smtp):
    body = valid_body(email="patient.one@example.org", destination="BE", condition="stroke")
    response = worker_app.test_client().post(URL, json=body)
    assert response.status_code == 201
    reference = response.get_json()["reference"]

    assert wait_until(lambda: len(smtp.received) >= 2 and all_outbox_done(worker_app))
    [ack] = smtp.to("patient.one@example.org")
    assert reference in ack.message["Subject"]
    with worker_app.app_context():
        required = [d.text for d in disclaimers_in_scope("nl", "BE", "stroke") if d.required]
    assert required and all(text in ack.text().splitlines() for text in required)
    providers = [r for r in smtp.received if r is not ack]
    assert len(providers) == 1
    assert reference in providers[0].text()
    assert "patient.one" not in providers[0].raw.decode()
    assert statuses(worker_app) == [("acknowledgement", "sent"), ("provider", "sent")]


def test_the_same_tasks_delivered_twice_send_once(worker_app: Flask, app, smtp):
    client = worker_app.test_client()
    client.post(URL, json=valid_body(email="twice@example.org"))
    assert wait_until(lambda: len(smtp.received) == 2 and all_outbox_done(worker_app))

    celery = worker_app.extensions["celery"]
    with worker_app.app_context():
        rows = db.session.execute(db.select(OutboxMessage).order_by(OutboxMessage.id)).scalars()
        duplicates = [(row.topic, row.id) for row in rows]
        db.session.remove()
    for topic, row_id in duplicates:
        task = (
            "quote.route_request"
            if topic == "quote_request.received"
            else "quote.send_notification"
        )
        celery.send_task(task, args=[row_id])
        celery.send_task(task, args=[row_id])

    # The worker takes messages in order: once a later request is fully handled,
    # the duplicates published before it have been consumed.
    client.post(URL, json=valid_body(email="marker@example.org"))
    assert wait_until(
        lambda: len(smtp.to("marker@example.org")) == 1 and all_outbox_done(worker_app)
    )
    assert len(smtp.to("twice@example.org")) == 1
    assert len(smtp.received) == 4  # two per request, no more


def test_421_then_success_through_the_worker_sends_once(worker_app: Flask, app, smtp):
    smtp.reply_next("421 4.4.2 Try again later")
    worker_app.test_client().post(URL, json=valid_body(email="retry@example.org"))
    assert wait_until(lambda: all_outbox_done(worker_app) and len(smtp.received) == 2)
    assert len(smtp.to("retry@example.org")) == 1
    with worker_app.app_context():
        attempts = db.session.execute(db.select(db.func.sum(Notification.attempts))).scalar()
        db.session.remove()
    assert attempts == 3  # one refused with 421, then two accepted


def test_550_through_the_worker_is_not_retried(worker_app: Flask, app, smtp):
    smtp.reply_next("550 5.1.1 No such user")
    worker_app.test_client().post(URL, json=valid_body(email="nobody@example.org"))
    assert wait_until(lambda: all_outbox_done(worker_app))
    assert sorted(statuses(worker_app)) == [("acknowledgement", "failed"), ("provider", "sent")]
    assert smtp.to("nobody@example.org") == []


def test_redis_down_during_post_then_the_relay_delivers(postgres: Server, app, smtp, make_app):
    broker = start_redis_server()
    try:
        worker_app = pipeline_app(make_app, postgres.url, broker.url, smtp)
        with running_worker(worker_app):
            broker.kill()
            client = worker_app.test_client()
            started = time.monotonic()
            response = client.post(URL, json=valid_body(email="outage@example.org"))
            elapsed = time.monotonic() - started
            assert response.status_code == 201
            assert elapsed < 2.0, "the POST must not wait on the broker"
            assert client.get("/readyz").get_json()["checks"]["broker"] == "down"
            assert not all_outbox_done(worker_app)

            broker.restart()
            assert wait_until(
                lambda: len(smtp.to("outage@example.org")) == 1 and all_outbox_done(worker_app),
                timeout=60,
            )
            assert len(smtp.received) == 2
    finally:
        broker.stop()


def test_new_outbox_rows_wake_the_relay_without_waiting_for_its_poll(
    postgres: Server, redis_server: Server, app, smtp, make_app
):
    with redis.Redis.from_url(redis_server.url) as client:
        client.flushdb()
    # A poll so slow that only the NOTIFY of each new row can explain a prompt delivery.
    slow_poll = pipeline_app(
        make_app, postgres.url, redis_server.url, smtp, OUTBOX_RELAY_SECONDS=60
    )
    with running_worker(slow_poll):
        slow_poll.test_client().post(URL, json=valid_body(email="prompt@example.org"))
        assert wait_until(lambda: len(smtp.received) == 2, timeout=30)


def test_a_relay_waiting_out_a_long_poll_stops_at_once_when_asked(postgres: Server, app, make_app):
    relay = OutboxRelay(make_app(base_config(postgres.url, OUTBOX_RELAY_SECONDS=60)))
    relay.start()
    try:
        # Listening, with nothing to publish: it waits for a NOTIFY or its minute.
        assert wait_until(lambda: relay._wakeup.connection is not None, timeout=10)
        relay.stop(timeout=2)
        assert relay._thread is not None and not relay._thread.is_alive()
    finally:
        relay.stop()


def test_the_relay_publishes_batch_after_batch_on_one_broker_connection(
    postgres: Server, app, smtp, make_app
):
    # A Redis of this test's own: its count of connections is this test's alone
    # (the session's Redis serves the other test process too).
    private = start_redis_server()
    try:
        relay_app = pipeline_app(make_app, postgres.url, private.url, smtp)
        relay = OutboxRelay(relay_app)
        client = relay_app.test_client()
        with redis.Redis.from_url(private.url) as broker:

            def connections_made() -> int:
                return broker.info("stats")["total_connections_received"]

            try:
                # The first batch opens the relay's connection (and the API its own).
                client.post(URL, json=valid_body(email="batch.first@example.org"))
                assert relay.run_once() == 1
                before = connections_made()
                for number in range(5):
                    client.post(URL, json=valid_body(email=f"batch.{number}@example.org"))
                    assert relay.run_once() == 1
                assert connections_made() == before
                assert broker.llen("celery") == 6  # each row published once
            finally:
                relay._drop_broker()
    finally:
        private.stop()
