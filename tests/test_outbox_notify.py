"""The NOTIFY that wakes the relay: sent for rows it is to publish, not for rows a run claimed."""

from __future__ import annotations

import psycopg
from sqlalchemy.engine import make_url

from quote_service.extensions import db
from quote_service.services import outbox
from tests.support.servers import Server


def listener(postgres: Server) -> psycopg.Connection:
    url = make_url(postgres.url).set(drivername="postgresql")
    connection = psycopg.connect(url.render_as_string(hide_password=False), autocommit=True)
    connection.execute(f"LISTEN {outbox.NOTIFY_CHANNEL}")
    return connection


def test_rows_written_claimed_by_their_run_do_not_wake_the_relay(app_context, postgres: Server):
    with listener(postgres) as relay:
        with outbox.claimed_for(outbox.TOPIC_SEND, "run-1"):
            outbox.enqueue(outbox.TOPIC_SEND, {"notification_id": 1})
        db.session.commit()  # a routing's own emails: no wake-up
        outbox.enqueue(outbox.TOPIC_SEND, {"notification_id": 2})
        db.session.commit()  # a row for the relay: one
        # Both commits came before this read, so every notification sent is here.
        woken = list(relay.notifies(timeout=0.5, stop_after=2))
    assert len(woken) == 1


def test_a_statement_with_one_row_for_the_relay_wakes_it(app_context, postgres: Server):
    with listener(postgres) as relay:
        with outbox.claimed_for(outbox.TOPIC_SEND, "run-1"):
            outbox.enqueue(outbox.TOPIC_SEND, {"notification_id": 1})
            outbox.enqueue(outbox.TOPIC_RECEIVED, {"quote_request_id": 1})  # not claimed
        db.session.commit()
        woken = list(relay.notifies(timeout=5, stop_after=1))
    assert len(woken) == 1
