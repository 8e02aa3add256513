"""Coordinators: send clinics' quotes to the patient."""

from __future__ import annotations

from typing import Any

from quote_service.api.auth import COORDINATOR, actor, requires
from quote_service.api.parsing import Blueprint
from quote_service.api.queue import ETAG_HEADER, ITEM, etag, expected_version, versioned
from quote_service.models import QuoteRequest
from quote_service.schemas.queue import QueueItemSchema
from quote_service.schemas.quotes import QuotesSendInSchema
from quote_service.services import workflow

blp = Blueprint(
    "quotes",
    __name__,
    url_prefix="/api/v1",
    description="Coordinators: clinics' quotes (bearer token)",
)


@blp.route(f"{ITEM}/quotes/send", methods=["POST"])
@blp.doc(security=COORDINATOR)
@requires("coordinator")
@blp.arguments(QuotesSendInSchema)
@blp.response(200, QueueItemSchema, headers=ETAG_HEADER)
@blp.alt_response(
    422, description="A quote id of another request, or one not `submitted` (field `quote_ids`)."
)
@versioned("`request_closed` (the request ended or was erased)")
def send_quotes(body: dict[str, Any], reference: str) -> tuple[QuoteRequest, dict[str, str]]:
    """Email the patient the chosen quotes side by side; the request becomes quoted"""
    version = expected_version(body)
    request = workflow.send_quotes(reference, body["quote_ids"], body.get("note"), actor(), version)
    return request, etag(request)
