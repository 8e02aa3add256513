"""POST /api/v1/quote-requests: the public intake of website forms."""

from __future__ import annotations

from typing import Any

from flask import current_app, url_for

from quote_service.api.parsing import FORM_MIMETYPE, Blueprint
from quote_service.extensions import limiter
from quote_service.models import QuoteRequest
from quote_service.schemas.intake import QuoteRequestCreatedSchema, QuoteRequestInSchema
from quote_service.services import intake

blp = Blueprint(
    "intake", __name__, url_prefix="/api/v1", description="Public intake of quote requests"
)


def intake_limit() -> str:
    return current_app.config["RATE_LIMIT_INTAKE"]


@blp.route("/quote-requests", methods=["POST"])
@limiter.limit(intake_limit)
@blp.alt_response(429, description="Too many requests from this address; see Retry-After.")
@blp.arguments(QuoteRequestInSchema, location="json_or_form")
@blp.doc(
    requestBody={"content": {FORM_MIMETYPE: {"schema": QuoteRequestInSchema}}},
)
@blp.response(201, QuoteRequestCreatedSchema)
@blp.alt_response(415, description="The body is neither JSON nor a urlencoded form.")
def create_quote_request(data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Ask for a free quote"""
    request = intake.submit_quote_request(data)
    return created_body(request), {"Location": location_of(request)}


def created_body(request: QuoteRequest) -> dict[str, Any]:
    # Spam looks like any other success: the status is never revealed as spam.
    return {"reference": request.reference, "status": "received", "created_at": request.created_at}


def location_of(request: QuoteRequest) -> str:
    return url_for("intake.create_quote_request") + "/" + request.reference
