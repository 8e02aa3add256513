"""What the database holds once a fault has passed: outbox, notifications, rows per request."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask

from quote_service.extensions import db
from quote_service.models import Event, Notification, OutboxMessage, QuoteRequest


def pending_outbox(app: Flask) -> int:
    """Outbox rows whose work has not completed."""
    with app.app_context():
        try:
            return db.session.execute(
                db.select(db.func.count(OutboxMessage.id)).where(
                    OutboxMessage.completed_at.is_(None)
                )
            ).scalar_one()
        finally:
            db.session.remove()


@dataclass(frozen=True)
class SentRecord:
    reference: str
    kind: str
    recipient: str
    status: str
    attempts: int
    message_id: str


def notifications(app: Flask) -> list[SentRecord]:
    with app.app_context():
        try:
            rows = db.session.execute(
                db.select(
                    QuoteRequest.reference,
                    Notification.kind,
                    Notification.recipient,
                    Notification.status,
                    Notification.attempts,
                    Notification.message_id,
                )
                .join(QuoteRequest, Notification.quote_request_id == QuoteRequest.id)
                .order_by(Notification.id)
            ).all()
            return [SentRecord(*row) for row in rows]
        finally:
            db.session.remove()


@dataclass(frozen=True)
class RequestRows:
    """How many rows of each kind a request's intake transaction wrote."""

    received_events: int
    outbox_rows: int


def intake_rows(app: Flask) -> dict[str, RequestRows]:
    """Every stored request by reference, with its `received` events and outbox rows."""
    with app.app_context():
        try:
            events = (
                db.select(db.func.count(Event.id))
                .where(Event.quote_request_id == QuoteRequest.id, Event.type == "received")
                .scalar_subquery()
            )
            outbox_rows = (
                db.select(db.func.count(OutboxMessage.id))
                .where(
                    OutboxMessage.topic == "quote_request.received",
                    OutboxMessage.payload["quote_request_id"].as_integer() == QuoteRequest.id,
                )
                .scalar_subquery()
            )
            rows = db.session.execute(db.select(QuoteRequest.reference, events, outbox_rows))
            return {reference: RequestRows(e, o) for reference, e, o in rows}
        finally:
            db.session.remove()
