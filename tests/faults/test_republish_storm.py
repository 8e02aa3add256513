"""A backlog of 2,000 rows drains behind a slow consumer with no row published more than twice.

The relay and the leases against the real broker and database, with stored
rows and a consumer that takes messages from the Redis queue at its own pace
(claiming and completing rows as the tasks do), rather than 2,000 real emails.
Some messages are lost before they start and some runs die holding their row:
those are published once more, and nothing else is. The relay puts ten rows
in a message, as it does by default: a lost message loses ten rows.
"""

from __future__ import annotations

import time
import uuid
from queue import Empty

import pytest
from flask import Flask
from kombu import Connection

from quote_service.extensions import db
from quote_service.models import OutboxMessage, utcnow
from quote_service.services import outbox
from tests.conftest import base_config
from tests.support.servers import Server

BACKLOG = 2000
ROWS_PER_MESSAGE = 10
PER_ROUND = 4  # messages (40 rows) the slow consumer takes between two relay rounds
LOST = 2  # messages (20 rows) dropped before their task started
DIED = 10  # runs that claimed their row and died


def counts(app: Flask) -> tuple[int, int]:
    """(rows not completed, the highest publish count)."""
    return db.session.execute(
        db.select(
            db.func.count(OutboxMessage.id).filter(OutboxMessage.completed_at.is_(None)),
            db.func.max(OutboxMessage.publish_count),
        )
    ).one()


@pytest.mark.timeout(120)
def test_a_backlog_drains_without_a_republishing_storm(
    postgres: Server, app: Flask, make_app, broker: str
) -> None:
    # A lease of 1 s: the drain below lasts many leases.
    api = make_app(
        base_config(
            postgres.url,
            REDIS_URL=broker,
            OUTBOX_LEASE_SECONDS=1,
            OUTBOX_ROWS_PER_MESSAGE=ROWS_PER_MESSAGE,
        )
    )
    with api.app_context(), Connection(broker) as connection:
        now = utcnow()
        db.session.execute(
            db.insert(OutboxMessage),
            [
                {
                    "topic": outbox.TOPIC_RECEIVED,
                    "payload": {"quote_request_id": index},
                    "created_at": now,
                    "available_at": now,
                }
                for index in range(BACKLOG)
            ],
        )
        db.session.commit()
        while db.session.execute(
            db.select(db.func.count(OutboxMessage.id)).where(OutboxMessage.published_at.is_(None))
        ).scalar_one():
            outbox.relay_once()

        queue = connection.SimpleQueue("celery")
        consumed = runs = lost = died = 0
        deadline = time.monotonic() + 90
        while counts(api)[0] > 0:
            assert time.monotonic() < deadline, ("no drain", counts(api), consumed)
            for _ in range(PER_ROUND):
                try:
                    message = queue.get(block=False)
                except Empty:
                    break
                [outbox_ids], _, _ = message.payload
                message.ack()
                consumed += 1
                if lost < LOST and consumed % 50 == 0:
                    lost += 1  # taken by a worker that died before starting it
                    continue
                for outbox_id in outbox_ids:
                    runs += 1
                    try:
                        row = outbox.claim(outbox_id, uuid.uuid4().hex)
                    except outbox.Held:
                        continue
                    if row is None:
                        continue  # a duplicate of work already done
                    if died < DIED and runs % 50 == 25:
                        died += 1  # the run dies holding the row
                        db.session.rollback()
                        continue
                    outbox.complete(row)
                    db.session.commit()
            outbox.relay_once()

        pending, most = counts(api)
        assert (lost, died) == (LOST, DIED)
        assert runs >= BACKLOG - LOST * ROWS_PER_MESSAGE
        assert pending == 0
        assert most <= 2, most
        republished = db.session.execute(
            db.select(db.func.count(OutboxMessage.id)).where(OutboxMessage.publish_count == 2)
        ).scalar_one()
        # The rows of the lost messages and the died, published again; the backlog itself never.
        again = LOST * ROWS_PER_MESSAGE + DIED
        assert again <= republished <= again + PER_ROUND * ROWS_PER_MESSAGE, republished
        queue.close()
