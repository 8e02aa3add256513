"""The outbox: work recorded with the data it is about, published to the workers later.

The request path only writes rows. The relay (running inside the Celery
worker) publishes rows that are due and pushes their `available_at` one lease
ahead; a row is completed only when its work is done, so a message lost in
the broker or in a killed worker is published again when the lease runs out.
Handlers lock their row, so a duplicate delivery waits and then sees it done.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import text

from quote_service.extensions import db
from quote_service.logging_setup import current_request_id
from quote_service.models import OutboxMessage, utcnow

log = logging.getLogger(__name__)

TOPIC_RECEIVED = "quote_request.received"
TOPIC_SEND = "notification.send"
# Each topic is handled by one named Celery task (see worker/tasks.py).
TASK_FOR_TOPIC = {
    TOPIC_RECEIVED: "quote.route_request",
    TOPIC_SEND: "quote.send_notification",
}

# The relay LISTENs here (PostgreSQL) to publish new rows at once.
NOTIFY_CHANNEL = "quote_service_outbox"

# (task name, outbox row id, broker connection, request id or None)
Publish = Callable[[str, int, Any, str | None], None]


def enqueue(topic: str, payload: dict[str, int], now: datetime | None = None) -> OutboxMessage:
    """Add a row to the session; it is published once the caller commits.

    The row records the request id of the HTTP request or task that caused it,
    so the task it becomes logs under the same id.
    """
    now = now or utcnow()
    request_id = current_request_id()
    body: dict[str, Any] = {**payload, "request_id": request_id} if request_id else dict(payload)
    row = OutboxMessage(topic=topic, payload=body, created_at=now, available_at=now)
    db.session.add(row)
    if db.session.get_bind().dialect.name == "postgresql":
        # Sent when the transaction commits, so the relay wakes for committed rows
        # only; PostgreSQL folds repeats within one transaction.
        db.session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": NOTIFY_CHANNEL})
    return row


def publish_with_celery(
    task_name: str, outbox_id: int, connection: Any, request_id: str | None = None
) -> None:
    # No publish retries: with the broker down the relay fails fast and the
    # rows stay due for its next round. The request id travels as a message
    # header, read back by the worker (worker/observability.py).
    current_app.extensions["celery"].send_task(
        task_name,
        args=[outbox_id],
        connection=connection,
        retry=False,
        headers={"request_id": request_id} if request_id else None,
    )


def relay_once(publish: Publish | None = None, batch_size: int | None = None) -> int:
    """Publish one batch of due rows; return how many were published."""
    publish = publish or publish_with_celery
    batch_size = batch_size or current_app.config["OUTBOX_BATCH_SIZE"]
    lease = timedelta(seconds=current_app.config["OUTBOX_LEASE_SECONDS"])
    now = utcnow()
    rows = list(
        db.session.execute(
            db.select(OutboxMessage)
            .where(OutboxMessage.completed_at.is_(None), OutboxMessage.available_at <= now)
            .order_by(OutboxMessage.available_at, OutboxMessage.id)
            .limit(batch_size)
            # Several workers may relay at once; each takes different rows.
            .with_for_update(skip_locked=True)
        ).scalars()
    )
    if not rows:
        db.session.rollback()
        return 0
    try:
        # A fresh broker connection per batch: after an outage no stale pooled
        # connection can keep failing the relay.
        with current_app.extensions["celery"].connection_for_write() as connection:
            for row in rows:
                publish(
                    TASK_FOR_TOPIC[row.topic], row.id, connection, row.payload.get("request_id")
                )
                row.published_at = now
                row.publish_count += 1
                row.available_at = now + lease
    except Exception:
        db.session.rollback()
        raise
    db.session.commit()
    return len(rows)


def claim(outbox_id: int) -> OutboxMessage | None:
    """Lock a row for its handler; None when it is gone or already done."""
    row = db.session.execute(
        db.select(OutboxMessage).where(OutboxMessage.id == outbox_id).with_for_update()
    ).scalar_one_or_none()
    if row is None or row.completed_at is not None:
        db.session.rollback()
        return None
    return row


def complete(row: OutboxMessage, now: datetime | None = None) -> None:
    row.completed_at = now or utcnow()


def retry_at(row: OutboxMessage, when: datetime) -> None:
    """Make the row due again at `when` (a retry with backoff)."""
    row.available_at = when


def backlog() -> dict[str, Any]:
    """How much work waits: rows not completed, those never published, those published again.

    Only rows not completed are counted, so the pending index serves the query
    however long the outbox's history grows. A pending row published more than
    once is work whose lease ran out (a lost message, a killed worker) or an
    email waiting for its next delivery attempt.
    """
    pending = OutboxMessage.completed_at.is_(None)
    unpublished = OutboxMessage.published_at.is_(None)
    count, oldest, unpublished_count, oldest_unpublished, republished = db.session.execute(
        db.select(
            db.func.count(OutboxMessage.id),
            db.func.min(OutboxMessage.created_at),
            db.func.count(OutboxMessage.id).filter(unpublished),
            db.func.min(OutboxMessage.created_at).filter(unpublished),
            db.func.count(OutboxMessage.id).filter(OutboxMessage.publish_count > 1),
        ).where(pending)
    ).one()
    return {
        "pending": count,
        "oldest_created_at": oldest,
        "unpublished": unpublished_count,
        "oldest_unpublished_created_at": oldest_unpublished,
        "republished": republished,
    }
