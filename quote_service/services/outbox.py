"""The outbox: work recorded with the data it is about, published to the workers later.

The request path only writes rows. The relay publishes rows that are due; a
row is completed only when its work is done, so a message lost in the broker
or in a killed worker is published again. How soon, without a storm:

- A task that starts on a row *claims* it: its run's `holder` id, `started_at`,
  and a lease (`available_at` one `OUTBOX_LEASE_SECONDS` ahead, 30 s by
  default), committed before the work and renewed while an email is being
  sent. A duplicate delivery meanwhile sees the live lease and leaves the row
  alone. A worker that dies stops renewing: the lease runs out and the relay
  publishes the row again, so crashed work is redone within a lease, not
  after the broker's visibility timeout.
- A published row whose message has not started yet is looked at again a
  lease after publication, and published again only when its queue is empty:
  then its message is not waiting there (lost with the broker, or with a
  worker that had taken it and died). A backlog still in the queue is never
  re-published while it drains.
- A run that fails (an error that no in-task retry mended) or dies counts as a
  failure; after `OUTBOX_MAX_FAILURES` the row is given up: completed as
  failed, with an event on its request's timeline, never published forever.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from kombu.exceptions import ChannelError
from sqlalchemy import Insert, Update, insert, or_, update

from quote_service.extensions import db
from quote_service.logging_setup import current_request_id
from quote_service.models import Actor, EventType, Notification, OutboxMessage, utcnow
from quote_service.models.vocabulary import NotificationStatus, notification_event
from quote_service.services import timeline

log = logging.getLogger(__name__)

TOPIC_RECEIVED = "quote_request.received"
TOPIC_SEND = "notification.send"
# Each topic is handled by one named Celery task (see worker/tasks.py).
TASK_FOR_TOPIC = {
    TOPIC_RECEIVED: "quote.route_request",
    TOPIC_SEND: "quote.send_notification",
}

# The relay LISTENs here (PostgreSQL) to publish new rows at once; a trigger on
# outbox_message's inserts NOTIFYs it when one of them is unclaimed
# (migrations 0026_outbox_notify, 0027_outbox_notify_unclaimed).
NOTIFY_CHANNEL = "quote_service_outbox"

# (task name, outbox row ids, broker connection, their request ids, each or None)
Publish = Callable[[str, list[int], Any, list[str | None]], None]
# (broker connection, task name) -> messages waiting in that task's queue
QueueSize = Callable[[Any, str], int]


def enqueue(topic: str, payload: dict[str, int], now: datetime | None = None) -> OutboxMessage:
    """Add a row to the session; it is published once the caller commits.

    The row records the request id of the HTTP request or task that caused it,
    so the task it becomes logs under the same id. Inside `claimed_for` it is
    written already claimed by that run, which does the work itself.
    """
    now = now or utcnow()
    row = OutboxMessage(topic=topic, payload=_body(payload), created_at=now, available_at=now)
    claim = _claim_for(topic)
    if claim is not None:
        row.holder, row.started_at, row.available_at = claim.holder, now, now + _lease()
        claim.rows.append(row)
    # On PostgreSQL an unclaimed row's insert wakes the relay at commit: a
    # trigger NOTIFYs NOTIFY_CHANNEL (see NOTIFY_CHANNEL).
    db.session.add(row)
    return row


def insertion(topic: str, payload: dict[str, int], now: datetime | None = None) -> Insert:
    """`enqueue` as an INSERT, for a caller that sends it with other writes.

    Only for a row no run claims: inside `claimed_for(topic)` use `enqueue`.
    """
    assert _claim_for(topic) is None, "a claimed row is enqueued, not inserted"
    now = now or utcnow()
    # Every column given: the columns' Python defaults are not applied to a
    # statement that carries other writes as CTEs.
    return insert(OutboxMessage).values(
        topic=topic,
        payload=_body(payload),
        created_at=now,
        available_at=now,
        publish_count=0,
        failures=0,
    )


def _body(payload: dict[str, int]) -> dict[str, Any]:
    """The payload with the request id of the HTTP request or task that caused the row."""
    request_id = current_request_id()
    return {**payload, "request_id": request_id} if request_id else dict(payload)


# The session.info key of the `claimed_for` block running in this session.
_CLAIMING = "outbox_claiming"


@dataclass
class _Claiming:
    topic: str
    holder: str
    rows: list[OutboxMessage] = field(default_factory=list)


def _claim_for(topic: str) -> _Claiming | None:
    claim: _Claiming | None = db.session.info.get(_CLAIMING)
    return claim if claim is not None and claim.topic == topic else None


def claiming(topic: str) -> bool:
    """Whether rows of `topic` queued now are written claimed (inside `claimed_for`)."""
    return _claim_for(topic) is not None


@contextmanager
def claimed_for(topic: str, holder: str) -> Iterator[list[OutboxMessage]]:
    """Rows of `topic` queued in the block are written claimed by `holder`; yields them.

    For a run that does the rows' work itself right after its commit (the
    routing sends the emails it queued): the relay leaves them alone while
    their lease lasts, and publishes them as any other row if the run dies
    before it gets to them. No statement is added: the claim is in the INSERT.
    """
    claiming = _Claiming(topic, holder)
    db.session.info[_CLAIMING] = claiming
    try:
        yield claiming.rows
    finally:
        del db.session.info[_CLAIMING]


def publish_with_celery(
    task_name: str, outbox_ids: list[int], connection: Any, request_ids: list[str | None]
) -> None:
    """One message for the rows: the task runs them in turn (worker/tasks.py).

    No publish retries: with the broker down the relay fails fast and the
    rows stay due for its next round. The request ids travel as a message
    header, read back by the worker for each row (worker/observability.py);
    rows that share one (the emails of one routing) name it for the whole task.
    """
    headers: dict[str, Any] = {"request_ids": request_ids}
    if len(set(request_ids)) == 1 and request_ids[0] is not None:
        headers["request_id"] = request_ids[0]
    current_app.extensions["celery"].send_task(
        task_name, args=[outbox_ids], connection=connection, retry=False, headers=headers
    )


def queue_size_with_celery(connection: Any, task_name: str) -> int:
    """Messages waiting in the broker queue the task is routed to."""
    celery = current_app.extensions["celery"]
    queue = celery.amqp.router.route({}, task_name)["queue"].name
    try:
        return connection.default_channel.queue_declare(queue=queue, passive=True).message_count
    except ChannelError:
        return 0  # Redis drops an empty list: no queue is an empty queue


def _lease() -> timedelta:
    return timedelta(seconds=current_app.config["OUTBOX_LEASE_SECONDS"])


def _waiting_in_queue(row: OutboxMessage) -> bool:
    """Published, and no task has started on it since: its message is queued (or lost)."""
    return row.published_at is not None and (
        row.started_at is None or row.started_at < row.published_at
    )


def relay_once(
    publish: Publish | None = None,
    batch_size: int | None = None,
    queue_size: QueueSize | None = None,
    connection: Any = None,
) -> int:
    """Publish one batch of due rows; return how many rows it looked at.

    `connection`: the broker connection to publish on, kept by the caller
    across batches (the relay drops it after any error, so an outage never
    leaves it failing on a stale one); without it, one is opened for the batch.
    """
    publish = publish or publish_with_celery
    queue_size = queue_size or queue_size_with_celery
    batch_size = batch_size or current_app.config["OUTBOX_BATCH_SIZE"]
    lease = _lease()
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
        with (
            nullcontext(connection)
            if connection is not None
            else current_app.extensions["celery"].connection_for_write()
        ) as broker:
            queued: dict[str, int] = {}
            to_publish: dict[str, list[OutboxMessage]] = {}
            for row in rows:
                task = TASK_FOR_TOPIC[row.topic]
                if _waiting_in_queue(row):
                    if task not in queued:
                        queued[task] = queue_size(broker, task)
                    if queued[task] > 0:
                        # Maybe still in the queue, behind a backlog: look again later.
                        row.available_at = now + lease
                        continue
                to_publish.setdefault(task, []).append(row)
            per_message = current_app.config["OUTBOX_ROWS_PER_MESSAGE"]
            for task, due in to_publish.items():
                for start in range(0, len(due), per_message):
                    group = due[start : start + per_message]
                    ids = [row.id for row in group]
                    publish(task, ids, broker, [row.payload.get("request_id") for row in group])
                    for row in group:
                        row.published_at = now
                        row.publish_count += 1
                        row.available_at = now + lease
    except Exception:
        db.session.rollback()
        raise
    db.session.commit()
    return len(rows)


class Held(Exception):
    """Another task run holds the row's lease right now: this delivery is a duplicate."""


def claim(outbox_id: int, holder: str, *, commit: bool = True) -> OutboxMessage | None:
    """Take the row's lease for this task run and lock it for the work.

    None when there is nothing to do: the row is gone or done, or it failed
    too often and was given up just now; `Held` while another live run holds
    it (that run completes it, or its lease runs out and the relay publishes
    the row again). The lease
    is committed before the caller works, so a worker that dies from here on
    leaves a lease that runs out, not a row that waits for a long timeout.

    `commit=False` leaves the usual case's lease in the open transaction, for
    the caller to commit with its own first writes (one COMMIT fewer): only
    for a caller that reads, and cannot crash the process, before that commit.
    A run that dies before it has left nothing behind, so the broker's
    redelivery finds the row as the relay left it. Taking over a dead run's
    row is committed here either way: the failure it counts must not be lost.
    """
    now = utcnow()
    # The usual case in one statement: a row no run holds (or this run's own,
    # on a retry) is taken by the UPDATE itself, which locks it as it writes.
    taken = db.session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.id == outbox_id,
            OutboxMessage.completed_at.is_(None),
            or_(OutboxMessage.holder.is_(None), OutboxMessage.holder == holder),
        )
        .values(holder=holder, started_at=now, available_at=now + _lease())
        .returning(OutboxMessage)
        .execution_options(populate_existing=True)
    ).scalar()
    if taken is not None:
        if not commit:
            return taken  # the UPDATE holds the row's lock until the caller commits
        db.session.commit()
        return _locked(outbox_id)
    # Gone, done, or held by another run: look at it under lock.
    row = _locked(outbox_id)
    if row is None:
        return None
    if row.holder is not None and row.holder != holder:
        held = not _waiting_in_queue(row) and row.available_at > now
        if held:
            db.session.rollback()
            raise Held(outbox_id)
        # The run that held it ended without releasing it: it died.
        row.failures += 1
        if row.failures >= current_app.config["OUTBOX_MAX_FAILURES"]:
            give_up(row, "the worker running it stopped (killed or crashed)")
            db.session.commit()
            return None
    row.holder = holder
    row.started_at = now
    row.available_at = now + _lease()
    db.session.commit()
    return _locked(outbox_id)


def _locked(outbox_id: int) -> OutboxMessage | None:
    row = db.session.execute(
        db.select(OutboxMessage).where(OutboxMessage.id == outbox_id).with_for_update()
    ).scalar_one_or_none()
    if row is None or row.completed_at is not None:
        db.session.rollback()
        return None
    return row


def _still_held(outbox_ids: list[int], holder: str) -> tuple[Any, ...]:
    """The rows of `outbox_ids` that `holder` holds and that are not done."""
    return (
        OutboxMessage.id.in_(outbox_ids),
        OutboxMessage.holder == holder,
        OutboxMessage.completed_at.is_(None),
    )


def release(outbox_ids: list[int], holder: str) -> None:
    """Hand rows this run holds back to the relay, due now, and commit."""
    if outbox_ids:
        db.session.execute(
            update(OutboxMessage)
            .where(*_still_held(outbox_ids, holder))
            .values(holder=None, available_at=utcnow())
            .execution_options(synchronize_session=False)
        )
    db.session.commit()


@contextmanager
def lease_kept(outbox_ids: list[int], holder: str) -> Iterator[None]:
    """Renew the rows' lease every third of it while the block runs (an SMTP send may be slow).

    The renewal runs in a thread with its own connection: the block holds no
    transaction open meanwhile. Pool processes never fork, so a thread there
    cannot leave a lock to a child. It renews only the rows `holder` still
    holds: a run whose lease ran out has been replaced and must not take it back.
    """
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    lease = _lease()
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(lease.total_seconds() / 3):
            with app.app_context():
                try:
                    db.session.execute(
                        update(OutboxMessage)
                        .where(*_still_held(outbox_ids, holder))
                        .values(available_at=utcnow() + lease)
                    )
                    db.session.commit()
                except Exception as error:  # the next renewal may get through
                    log.warning("outbox lease not renewed: %s", type(error).__name__)
                finally:
                    db.session.remove()

    thread = threading.Thread(target=renew, name="outbox-lease", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _completion(now: datetime | None) -> dict[str, Any]:
    """What completing a row writes: done, and released."""
    return {"completed_at": now or utcnow(), "holder": None}


def complete(row: OutboxMessage, now: datetime | None = None) -> None:
    for column, value in _completion(now).items():
        setattr(row, column, value)


def complete_by_id(outbox_id: int, now: datetime | None = None) -> None:
    """`complete` for a row the caller holds but has not loaded (one UPDATE, no SELECT)."""
    db.session.execute(completion_by_id(outbox_id, now))


def completion_by_id(outbox_id: int, now: datetime | None = None) -> Update:
    """The UPDATE of `complete_by_id`, for a caller that sends it with other writes."""
    return update(OutboxMessage).where(OutboxMessage.id == outbox_id).values(**_completion(now))


def retry_at(row: OutboxMessage, when: datetime) -> None:
    """Make the row due again at `when` (a retry with backoff) and release it."""
    row.available_at = when
    row.holder = None


def failure_backoff(failures: int) -> timedelta:
    """A short, growing pause before a failed run is tried again (2, 4, 8, 16 s...)."""
    return timedelta(seconds=min(60, 2**failures))


def record_failure(outbox_id: int, holder: str, reason: str) -> str:
    """A run ended in an error no retry mended: try again later, or give the row up.

    `reason` names the error's type only: it reaches an event, and an
    exception's text may quote personal data.
    """
    row = _locked(outbox_id)
    if row is None or row.holder != holder:
        db.session.rollback()
        return "done-already" if row is None else "superseded"
    row.failures += 1
    if row.failures >= current_app.config["OUTBOX_MAX_FAILURES"]:
        give_up(row, reason)
        db.session.commit()
        return "failed"
    row.last_error = reason[:200]
    retry_at(row, utcnow() + failure_backoff(row.failures))
    db.session.commit()
    return "retry"


def give_up(row: OutboxMessage, reason: str) -> None:
    """Complete a row whose work keeps failing, visibly: an event on its request's timeline.

    An email given up is `failed` like one the SMTP server refused, so the
    coordinators see it with the other emails of the request.
    """
    now = utcnow()
    complete(row, now)
    row.failed_at = now
    row.last_error = reason[:200]
    note = f"{TASK_FOR_TOPIC[row.topic]} failed {row.failures} times: {reason}"[:1000]
    log.error("outbox row %s given up after %d failures", row.id, row.failures)
    request_id: int | None = row.payload.get("quote_request_id")
    event_type: str = EventType.PROCESSING_FAILED
    data: dict[str, Any] = {"outbox_id": row.id, "task": TASK_FOR_TOPIC[row.topic]}
    if row.topic == TOPIC_SEND:
        notification = db.session.execute(
            db.select(Notification)
            .where(Notification.id == row.payload["notification_id"])
            .with_for_update()
        ).scalar_one()
        request_id = notification.quote_request_id
        data.update(notification_id=notification.id, kind=notification.kind)
        if notification.status not in (NotificationStatus.SENT, NotificationStatus.FAILED):
            notification.status = NotificationStatus.FAILED
            notification.last_error = note
            event_type = notification_event(notification.kind, NotificationStatus.FAILED)
    if request_id is not None:
        timeline.record(request_id, event_type, Actor.SYSTEM, note, data, at=now)


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
