"""Alerts to the coordinators that the public can cause, capped and grouped.

Anyone can post the public form: once the clinics' slots are used, every
request is unroutable, and a day later every one of them is past the SLA.
Without a cap each would be one email to COORDINATORS_EMAIL. So per kind,
the first COORDINATOR_ALERTS_PER_INTERVAL alerts of each
COORDINATOR_ALERT_INTERVAL_MINUTES go out one by one (the coordinators hear at
once); later ones are recorded as `grouped`, with an event on their request,
and beat sends one digest per interval naming how many there were and their
references. The cap is counted before each alert is recorded, so two workers
alerting at the same instant may each send one more: a soft cap is enough
against a flood.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import func

from quote_service.extensions import db
from quote_service.mail.rendering import body_sha256, build_message, environment, render
from quote_service.models import Actor, Notification, NotificationStatus, QuoteRequest, utcnow
from quote_service.models.vocabulary import notification_event
from quote_service.services import outbox, timeline

log = logging.getLogger(__name__)

# Kinds the public can trigger in numbers; the one place to add a new such alert.
ALERT_KINDS = ("unroutable_alert", "sla_alert", "urgent_alert")
ALERT_LABELS = {
    "unroutable_alert": "Could not be routed to a clinic",
    "sla_alert": "Past the first-response SLA",
    "urgent_alert": "Flagged as possibly urgent",
}
DIGEST_KIND = "alert_digest"
GROUPED_NOTE = "More alerts than the cap allows: named in the next digest to the coordinators."
# Not counted against the cap: they never reached the coordinators one by one.
_NOT_SENT_ALONE = (
    NotificationStatus.GROUPED,
    NotificationStatus.DIGESTED,
    NotificationStatus.BLOCKED,
)
# One digest names at most this many; any beyond wait for the next interval.
DIGEST_MAX_ALERTS = 2000


def interval() -> timedelta:
    return timedelta(minutes=current_app.config["COORDINATOR_ALERT_INTERVAL_MINUTES"])


def over_cap(kind: str, now: datetime | None = None) -> bool:
    """Whether this interval has had its share of `kind` alerts sent one by one."""
    since = (now or utcnow()) - interval()
    sent_alone = db.session.execute(
        db.select(func.count(Notification.id)).where(
            Notification.kind == kind,
            Notification.created_at >= since,
            Notification.status.not_in(_NOT_SENT_ALONE),
        )
    ).scalar_one()
    return sent_alone >= current_app.config["COORDINATOR_ALERTS_PER_INTERVAL"]


def send_digest(now: datetime | None = None) -> int:
    """Queue one digest of the grouped alerts, at most one per interval; return how many.

    Beat calls it every minute; it does nothing while the last digest is
    younger than the interval, so the interval alone sets the pace.
    """
    now = now or utcnow()
    last = db.session.execute(
        db.select(func.max(Notification.created_at)).where(Notification.kind == DIGEST_KIND)
    ).scalar_one()
    if last is not None and last > now - interval():
        return 0
    grouped = db.session.execute(
        db.select(Notification, QuoteRequest.reference)
        .join(QuoteRequest, QuoteRequest.id == Notification.quote_request_id)
        .where(Notification.status == NotificationStatus.GROUPED)
        .order_by(Notification.id)
        .limit(DIGEST_MAX_ALERTS)
        # Two overlapping runs take different alerts.
        .with_for_update(of=Notification, skip_locked=True)
    ).all()
    if not grouped:
        db.session.rollback()
        return 0
    digest = _record_digest([n for n, _ in grouped], [ref for _, ref in grouped], now)
    for notification, _ in grouped:
        notification.status = NotificationStatus.DIGESTED
        timeline.record(
            notification.quote_request_id,
            notification_event(notification.kind, NotificationStatus.DIGESTED),
            Actor.SYSTEM,
            data={"notification_id": notification.id, "digest_id": digest.id},
            at=now,
        )
    outbox.enqueue(outbox.TOPIC_SEND, {"notification_id": digest.id}, now)
    db.session.commit()
    log.info("queued a digest of %d coordinator alerts", len(grouped))
    return len(grouped)


def _record_digest(
    alerts: list[Notification], references: list[str], now: datetime
) -> Notification:
    by_kind: dict[str, list[str]] = {}
    for alert, reference in zip(alerts, references, strict=True):
        by_kind.setdefault(alert.kind, []).append(reference)
    context = {
        "total": len(alerts),
        "since": min(alert.created_at for alert in alerts).strftime("%Y-%m-%d %H:%M UTC"),
        "kinds": [
            {"label": ALERT_LABELS.get(kind, kind), "count": len(refs), "references": refs}
            for kind, refs in by_kind.items()
        ],
    }
    config = current_app.config
    rendered = render(environment(config["MAIL_TEMPLATES_DIR"] or None), DIGEST_KIND, "en", context)
    recipient = config["COORDINATORS_EMAIL"]
    message = build_message(config["MAIL_FROM"], recipient, rendered, reply_to=recipient)
    raw = message.as_bytes()
    digest = Notification(
        quote_request_id=None,
        kind=DIGEST_KIND,
        # The grouped alerts are taken under lock: no other digest holds the first one.
        dedupe_key=f"{DIGEST_KIND}:{alerts[0].id}",
        recipient=recipient,
        language="en",
        subject=rendered.subject,
        message_id=str(message["Message-ID"]),
        body_sha256=body_sha256(raw),
        mime=raw.decode("utf-8"),
        disclaimers=[],
        status=NotificationStatus.PENDING,
        created_at=now,
    )
    db.session.add(digest)
    db.session.flush()
    return digest
