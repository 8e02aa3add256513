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

from quote_service.extensions import db
from quote_service.models import OutboxMessage, utcnow

log = logging.getLogger(__name__)

TOPIC_RECEIVED = "quote_request.received"
TOPIC_SEND = "notification.send"
# Each topic is handled by one named Celery task (see worker/tasks.py).
TASK_FOR_TOPIC = {
    TOPIC_RECEIVED: "quote.route_request",
    TOPIC_SEND: "quote.send_notification",
}

Publish = Callable[[str, int, Any], None]


def enqueue(topic: str, payload: dict[str, int], now: datetime | None = None) -> OutboxMessage:
    """Add a row to the session; it is published once the caller commits."""
    now = now or utcnow()
    row = OutboxMessage(topic=topic, payload=payload, created_at=now, available_at=now)
    db.session.add(row)
    return row


def publish_with_celery(task_name: str, outbox_id: int, connection: Any) -> None:
    # No publish retries: with the broker down the relay fails fast and the
    # rows stay due for its next round.
    current_app.extensions["celery"].send_task(
        task_name, args=[outbox_id], connection=connection, retry=False
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
                publish(TASK_FOR_TOPIC[row.topic], row.id, connection)
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
    """How much work waits: rows not completed, and the oldest one's age."""
    count, oldest = db.session.execute(
        db.select(db.func.count(OutboxMessage.id), db.func.min(OutboxMessage.created_at)).where(
            OutboxMessage.completed_at.is_(None)
        )
    ).one()
    return {"pending": count, "oldest_created_at": oldest}
