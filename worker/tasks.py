"""Thin, named tasks: each takes an outbox row id and hands the work to a service."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

from celery import shared_task

from quote_service.extensions import db
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


@shared_task(name="quote.route_request")
def route_request(outbox_id: int) -> str:
    return run_outbox_task(pipeline.process_received, outbox_id)


@shared_task(name="quote.send_notification")
def send_notification(outbox_id: int) -> str:
    return run_outbox_task(notifications.deliver, outbox_id)


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
