"""Thin, named tasks: each takes an outbox row id and hands the work to a service."""

from __future__ import annotations

from celery import shared_task

from quote_service.services import (
    alerts,
    idempotency,
    invitations,
    notifications,
    pipeline,
    privacy,
    sla,
)

# acks_late + reject_on_worker_lost (set app-wide): a task killed mid-way is
# delivered again; the services make a second run change nothing.


@shared_task(name="quote.route_request")
def route_request(outbox_id: int) -> str:
    return pipeline.process_received(outbox_id)


@shared_task(name="quote.send_notification")
def send_notification(outbox_id: int) -> str:
    return notifications.deliver(outbox_id)


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
