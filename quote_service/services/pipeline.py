"""What the workers do with a received request: route it, then queue its emails."""

from __future__ import annotations

import logging
import uuid

from quote_service.extensions import db
from quote_service.models import QuoteRequest, RequestStatus
from quote_service.services import invitations, outbox, routing

log = logging.getLogger(__name__)


def process_received(outbox_id: int, holder: str | None = None) -> str:
    """Route the request of an outbox row and record its emails, in one transaction.

    Running it twice changes nothing: the row is locked and completed with
    the work, and a request that has left `received` is not routed again.
    `holder` names the task run (see `outbox.claim`).
    """
    try:
        row = outbox.claim(outbox_id, holder or uuid.uuid4().hex)
    except outbox.Held:
        return "in-flight"
    if row is None:
        return "done-already"
    request = db.session.execute(
        db.select(QuoteRequest)
        .where(QuoteRequest.id == row.payload["quote_request_id"])
        .with_for_update()
    ).scalar_one()
    outcome = "skipped"
    if request.status == RequestStatus.RECEIVED:
        decision = routing.decide(request)
        invitations.after_routing(request, decision)
        outcome = decision.outcome
    outbox.complete(row)
    reference = request.reference
    db.session.commit()
    log.info("routing of %s: %s", reference, outcome)
    return outcome
