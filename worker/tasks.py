"""Thin, named tasks: each takes outbox row ids and hands each row to a service."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from functools import partial

from celery import Task, shared_task

from quote_service.extensions import db
from quote_service.logging_setup import request_id_var, sane_request_id
from quote_service.services import (
    alerts,
    idempotency,
    invitations,
    notifications,
    outbox,
    pipeline,
    privacy,
    sla,
)
from quote_service.services.transient import is_transient, retry_transient

log = logging.getLogger(__name__)

# acks_late + reject_on_worker_lost (set app-wide): a task killed mid-way is
# delivered again; the services make a second run change nothing. The outbox
# lease brings the work back sooner than the broker does (services/outbox.py).

# How long a task keeps retrying a transient database error before it leaves
# the row to its lease: a database restart fits, and it stays well inside the
# 60 s soft time limit.
TRANSIENT_RETRY_SECONDS = 30.0

# How long a task takes new rows of its message: a third of the 60 s soft time
# limit, so the row it is on when the budget runs out still has time to finish.
BATCH_SECONDS = 20.0


def run_outbox_task(work: Callable[[int, str], str], outbox_id: int) -> str:
    """Run an outbox row's handler as one task run, with its own lease holder id.

    A transient database error is retried here with a short backoff (the
    handlers are idempotent, and the same holder keeps the lease). Any other
    error is a failure of the row: it is tried again after a pause, and given
    up as failed, with an event, after OUTBOX_MAX_FAILURES (outbox.record_failure).
    """
    holder = uuid.uuid4().hex
    try:
        return retry_transient(
            lambda: work(outbox_id, holder), TRANSIENT_RETRY_SECONDS, on_retry=db.session.remove
        )
    except notifications.SentNotRecorded:
        raise  # the lease runs out and the row comes back: see SentNotRecorded
    except Exception as error:
        db.session.remove()
        if is_transient(error):
            raise  # the database stayed away: the row's lease brings it back
        reason = type(error).__name__
        outcome = retry_transient(
            lambda: outbox.record_failure(outbox_id, holder, reason),
            TRANSIENT_RETRY_SECONDS,
            on_retry=db.session.remove,
        )
        log.warning("outbox row %s: %s (%s)", outbox_id, reason, outcome)
        raise


def run_outbox_rows(
    task: Task, work: Callable[[int, str], str], outbox_ids: int | list[int]
) -> str:
    """Run the rows of one message in turn, each as a run of its own (`run_outbox_task`).

    A message names one row (as every message did before the relay grouped
    them, so those still in a queue are served) or several. Each row's lines
    are logged under its own request id. A row that fails does not stop the
    others: the first failure is raised at the end, so the task counts as
    failed. A transient error that outlasted the retries stops the message:
    the database is away, and the rows not reached come back with the relay
    (published, never started: it looks again a lease later). Rows not reached
    within BATCH_SECONDS go on in a message of their own, so no task comes
    near its time limit whatever the SMTP server's pace.
    """
    if isinstance(outbox_ids, int):
        return run_outbox_task(work, outbox_ids)
    request_ids = getattr(task.request, "request_ids", None)
    if not isinstance(request_ids, list) or len(request_ids) != len(outbox_ids):
        request_ids = [None] * len(outbox_ids)
    started = time.monotonic()
    outcomes: list[str] = []
    failure: Exception | None = None
    for index, (outbox_id, request_id) in enumerate(zip(outbox_ids, request_ids, strict=True)):
        if index and time.monotonic() - started > BATCH_SECONDS:
            _hand_on(task.name, outbox_ids[index:], request_ids[index:])
            break
        token = request_id_var.set(sane_request_id(request_id) or task.request.id)
        try:
            outcomes.append(run_outbox_task(work, outbox_id))
        except Exception as error:
            if is_transient(error) or isinstance(error, notifications.SentNotRecorded):
                raise
            failure = failure or error
        finally:
            request_id_var.reset(token)
    if failure is not None:
        raise failure
    return ", ".join(outcomes)


def _hand_on(task_name: str, outbox_ids: list[int], request_ids: list[str | None]) -> None:
    try:
        outbox.publish_with_celery(task_name, outbox_ids, None, request_ids)
    except Exception as error:  # they come back with the relay, a lease later
        log.warning("%d outbox rows not handed on: %s", len(outbox_ids), type(error).__name__)


@shared_task(name="quote.route_request", bind=True)
def route_request(self: Task, outbox_ids: int | list[int]) -> str:
    # The task sends the emails its routing queued itself (pipeline.process_received).
    return run_outbox_rows(self, partial(pipeline.process_received, send=True), outbox_ids)


@shared_task(name="quote.send_notification", bind=True)
def send_notification(self: Task, outbox_ids: int | list[int]) -> str:
    return run_outbox_rows(self, notifications.deliver, outbox_ids)


@shared_task(name="quote.check_sla")
def check_sla() -> int:
    """Beat: alert the coordinators about requests past the first-response SLA."""
    return sla.alert_sla_breaches()


@shared_task(name="quote.send_alert_digest")
def send_alert_digest() -> int:
    """Beat: one digest of the coordinator alerts held back by the cap, once per interval."""
    return alerts.send_digest()


@shared_task(name="quote.apply_retention")
def apply_retention() -> dict[str, int]:
    """Beat: anonymise old closed requests and drop old email bodies."""
    return privacy.apply_retention()


@shared_task(name="quote.purge_idempotency_keys")
def purge_idempotency_keys() -> int:
    """Beat: forget Idempotency-Keys older than their 24 h lifetime."""
    return idempotency.purge_expired()


@shared_task(name="quote.sweep_invitations")
def sweep_invitations() -> dict[str, int]:
    """Beat: remind clinics at half time, expire late invitations, invite the next clinics."""
    return invitations.sweep()
