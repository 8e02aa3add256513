"""What the workers do with a received request: route it, then queue its emails."""

from __future__ import annotations

import logging
import uuid
from contextlib import nullcontext

from quote_service.extensions import db
from quote_service.models import QuoteRequest, RequestStatus
from quote_service.services import catalog_snapshot, invitations, notifications, outbox, routing

log = logging.getLogger(__name__)


def process_received(outbox_id: int, holder: str | None = None, *, send: bool = False) -> str:
    """Route the request of an outbox row and record its emails, in one transaction.

    Running it twice changes nothing: the row is locked and completed with
    the work, and a request that has left `received` is not routed again.
    `holder` names the task run (see `outbox.claim`).

    `send` (the worker's task): the run claims the emails it queued in the
    same transaction and sends them itself right after the commit
    (`notifications.send_held`), rather than leaving them to the relay and a
    task of their own. If it dies before, their lease runs out and the relay
    publishes them as any other.
    """
    holder = holder or uuid.uuid4().hex
    try:
        row = outbox.claim(outbox_id, holder)
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
    with (
        outbox.claimed_for(outbox.TOPIC_SEND, holder) if send else nullcontext([]) as emails,
        # Its emails name the catalog's things and carry its disclaimers: one read.
        catalog_snapshot.held(),
    ):
        if request.status == RequestStatus.RECEIVED:
            decision = routing.decide(request)
            invitations.after_routing(request, decision)
            outcome = decision.outcome
    outbox.complete(row)
    db.session.flush()  # the emails' rows get their ids; read before the commit expires them
    reference = request.reference
    held = notifications.outgoing_of(emails, reference)
    db.session.commit()
    log.info("routing of %s: %s", reference, outcome)
    notifications.send_held(held, holder)
    return outcome
