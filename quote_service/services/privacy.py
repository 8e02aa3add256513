"""Data-subject rights and retention: export, erasure, anonymisation, the read audit."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from flask import current_app

from quote_service.crypto import keyring
from quote_service.extensions import db
from quote_service.models import (
    AccessLog,
    Actor,
    ClinicQuote,
    EventType,
    Invitation,
    Notification,
    NotificationStatus,
    OutboxMessage,
    QuoteRequest,
    RoutingDecision,
    utcnow,
    vocabulary,
)
from quote_service.services import clinic_quotes, invitations, privacy_requests, timeline

N = NotificationStatus

ERASED_NAME = "[erased]"
# ISO 3166 "user-assigned" code: an unknown country, kept so counts still add up.
ERASED_COUNTRY = "ZZ"
BATCH = 500
# Lookup hashes and the link's salt say nothing to the person and open nothing.
NOT_EXPORTED = (
    "email_hash",
    "email_mailbox_hash",
    "phone_hash",
    "patient_token_salt",
    "patient_token_hash",
)


def record_access(
    actor: str,
    user_id: int | None,
    action: str,
    quote_request_id: int | None = None,
    subject: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Note who read or exported what; the caller commits."""
    db.session.add(
        AccessLog(
            actor=actor,
            user_id=user_id,
            action=action,
            quote_request_id=quote_request_id,
            subject_hash=keyring().lookup_hash(subject) if subject else None,
            detail=detail,
            at=utcnow(),
        )
    )


def requests_of(email: str) -> list[QuoteRequest]:
    return list(
        db.session.execute(
            db.select(QuoteRequest)
            .where(QuoteRequest.email_hash.in_(keyring().lookup_hashes(email)))
            .order_by(QuoteRequest.id)
        ).scalars()
    )


def export_person(email: str, actor: str, user_id: int | None) -> dict[str, Any]:
    """Everything stored about the person with this email address, as plain data."""
    requests = requests_of(email)
    record_access(actor, user_id, "export", subject=email)
    privacy_requests.fulfil(requests, "export", actor)
    db.session.commit()
    return {
        "email": email,
        "exported_at": utcnow().isoformat(),
        "quote_requests": [_export_request(request) for request in requests],
    }


def _export_request(request: QuoteRequest) -> dict[str, Any]:
    columns = {
        column.key: _plain(getattr(request, column.key))
        for column in QuoteRequest.__mapper__.columns
        if column.key not in NOT_EXPORTED
    }
    notifications = db.session.execute(
        db.select(Notification).where(Notification.quote_request_id == request.id)
    ).scalars()
    decisions = db.session.execute(
        db.select(RoutingDecision).where(RoutingDecision.quote_request_id == request.id)
    ).scalars()
    return {
        **columns,
        "timeline": [
            {"type": e.type, "actor": e.actor, "at": _plain(e.at), "note": e.note}
            for e in request.events
        ],
        "notifications": [
            {
                "kind": n.kind,
                "recipient": n.recipient,
                "status": n.status,
                "subject": n.subject,
                "sent_at": _plain(n.sent_at),
                "message": n.mime,
            }
            for n in notifications
        ],
        "routing": [
            {"outcome": d.outcome, "provider_id": d.provider_id, "decided_at": _plain(d.decided_at)}
            for d in decisions
        ],
        "invitations": [
            {
                "provider": i.provider.name,
                "status": i.status,
                "sent_at": _plain(i.sent_at),
                "respond_by": _plain(i.respond_by),
                "answered_at": _plain(i.answered_at),
                "decline_reason": i.decline_reason,
                "decline_note": i.decline_note,
            }
            for i in invitations.invitations_of(request.id)
        ],
        "quotes": [
            {
                "provider": q.provider.name,
                "status": q.status,
                **{field: _plain(getattr(q, field)) for field in clinic_quotes.QUOTE_FIELDS},
                "submitted_at": _plain(q.submitted_at),
                "sent_at": _plain(q.sent_at),
            }
            for q in clinic_quotes.quotes_of(request.id)
        ],
    }


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    return value.isoformat() if hasattr(value, "isoformat") else value


def anonymise(request: QuoteRequest, actor: str, reason: str) -> None:
    """Remove the personal data of one request; keep a skeleton for the statistics.

    Status, destination, condition, treatment, language and the timestamps
    stay, so counts and medians still add up; the name, contact details,
    message, travel window, age, budget, every note and every stored email
    body go. The caller commits.
    """
    now = utcnow()
    request.full_name = ERASED_NAME
    request.email = ""
    request.phone = None
    request.country_of_residence = ERASED_COUNTRY
    request.message = None
    request.patient_age = None
    request.travel_from = None
    request.travel_to = None
    request.budget_eur = None
    request.erased_at = now
    # The patient's link ends with the data it showed.
    request.patient_token_salt = request.patient_token_hash = None
    for event in request.events:
        event.note = None
    db.session.execute(
        db.update(RoutingDecision)
        .where(RoutingDecision.quote_request_id == request.id)
        .values(note=None)
    )
    for notification in db.session.execute(
        db.select(Notification).where(Notification.quote_request_id == request.id)
    ).scalars():
        notification.mime = None
        notification.last_error = None
        if notification.kind == "acknowledgement":
            notification.recipient = ""
        if notification.status in (N.PENDING, N.SENDING):
            notification.status = N.SUPPRESSED
    _cancel_pending_work(request)
    _end_clinic_work(request)
    for quote in db.session.execute(
        db.select(ClinicQuote).where(ClinicQuote.quote_request_id == request.id)
    ).scalars():
        quote.notes = None
        quote.doctor = None
    db.session.execute(
        db.update(Invitation)
        .where(Invitation.quote_request_id == request.id)
        .values(decline_note=None)
    )
    timeline.record(request, EventType.ERASED, actor, reason, at=now)


def _cancel_pending_work(request: QuoteRequest) -> None:
    """Complete the outbox rows of a request: nothing more is sent or routed for it."""
    notification_ids = db.select(Notification.id).where(Notification.quote_request_id == request.id)
    db.session.execute(
        db.update(OutboxMessage)
        .where(
            OutboxMessage.completed_at.is_(None),
            db.or_(
                OutboxMessage.payload["quote_request_id"].as_integer() == request.id,
                OutboxMessage.payload["notification_id"].as_integer().in_(notification_ids),
            ),
        )
        .values(completed_at=utcnow())
    )


def erase_person(email: str, actor: str, user_id: int | None) -> int:
    """Anonymise every request of this email address; return how many."""
    requests = requests_of(email)
    privacy_requests.fulfil(requests, "erase", actor)
    for request in requests:
        anonymise(request, actor, "Erased at the data subject's request.")
    record_access(actor, user_id, "erase", subject=email)
    db.session.commit()
    return len(requests)


def withdraw_consent(request: QuoteRequest) -> None:
    """Stop processing: no more emails or routing for this request. The caller commits."""
    request.consent_withdrawn_at = utcnow()
    for notification in db.session.execute(
        db.select(Notification).where(
            Notification.quote_request_id == request.id,
            Notification.status == N.PENDING,
        )
    ).scalars():
        notification.status = N.SUPPRESSED
    _cancel_pending_work(request)
    _end_clinic_work(request)


def _end_clinic_work(request: QuoteRequest) -> None:
    """Close the clinics' open invitations (their links answer 410) and unsent quotes."""
    invitations.close_for_request(request)
    clinic_quotes.withdraw_for_request(request)


def apply_retention(now: datetime | None = None) -> dict[str, int]:
    """Anonymise closed requests past RETENTION_DAYS; drop email bodies past their period."""
    now = now or utcnow()
    config = current_app.config
    closed_before = now - timedelta(days=config["RETENTION_DAYS"])
    bodies_before = now - timedelta(days=config["MAIL_BODY_RETENTION_DAYS"])
    stale = list(
        db.session.execute(
            db.select(QuoteRequest)
            .where(
                QuoteRequest.status.in_(vocabulary.ENDED),
                QuoteRequest.erased_at.is_(None),
                QuoteRequest.updated_at < closed_before,
            )
            .order_by(QuoteRequest.id)
            .limit(BATCH)
        ).scalars()
    )
    for request in stale:
        anonymise(
            request, Actor.SYSTEM, f"Retention: closed more than {config['RETENTION_DAYS']} days."
        )
    bodies = db.session.execute(
        db.update(Notification)
        .where(
            Notification.mime.is_not(None),
            Notification.created_at < bodies_before,
            Notification.status.in_(vocabulary.NOTIFICATION_SETTLED),
        )
        .values(mime=None)
    ).rowcount
    db.session.commit()
    return {"anonymised": len(stale), "bodies_dropped": bodies}


def access_log(limit: int, before_id: int | None = None) -> list[AccessLog]:
    statement = db.select(AccessLog).order_by(AccessLog.id.desc()).limit(limit)
    if before_id is not None:
        statement = statement.where(AccessLog.id < before_id)
    return list(db.session.execute(statement).scalars())
