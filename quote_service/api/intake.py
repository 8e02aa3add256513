"""POST /api/v1/quote-requests: the public intake of website forms.

The view's decorators, top to bottom, in the order that matters: the route;
the rate limits (every attempt counts, before a key is claimed); the
Idempotency-Key (api/idempotency_key.py, before the body is parsed); then the
body's parsing and the documentation, whose order does not matter. Form posts
naming their page are answered with a 303 there (api/form_redirect.py).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from flask import Response, current_app, g, url_for

from quote_service.api.form_redirect import redirect_html_forms
from quote_service.api.idempotency_key import REPLAYED_HEADER, idempotent
from quote_service.api.parsing import FORM_MIMETYPE, Blueprint
from quote_service.extensions import limiter
from quote_service.models import RequestStatus
from quote_service.safety.signs import ruleset
from quote_service.schemas.intake import QuoteRequestCreatedSchema, QuoteRequestInSchema
from quote_service.services import idempotency, intake

blp = Blueprint(
    "intake", __name__, url_prefix="/api/v1", description="Public intake of quote requests"
)
# Compile the urgent-sign rules when the app is built, not on a patient's first request.
blp.record_once(lambda state: ruleset())

# Field names a form may be told to highlight; anything else a client sent is not echoed.
FORM_FIELDS = tuple(QuoteRequestInSchema().fields)


def intake_limit() -> str:
    return current_app.config["RATE_LIMIT_INTAKE"]


def attempts_limit() -> str:
    return current_app.config["RATE_LIMIT_INTAKE_ATTEMPTS"]


def mark_received() -> None:
    """Note that this request was taken by the intake, so that it counts against the limit."""
    g.quote_request_received = True


def was_received(response: Response) -> bool:
    """Flask-Limiter's `deduct_when`: only a request the intake took uses up
    RATE_LIMIT_INTAKE, so a patient correcting a refused form is never locked
    out. Read from `g` rather than the status: a form post's success and its
    errors are both 303s."""
    return bool(g.get("quote_request_received"))


def limit_intake(view: Callable[..., Any]) -> Callable[..., Any]:
    """The intake's two limits per client address: RATE_LIMIT_INTAKE on requests
    taken, RATE_LIMIT_INTAKE_ATTEMPTS (looser, shared by the API and the hosted
    form) on every POST, refused or not, against abuse."""
    view = limiter.shared_limit(attempts_limit, scope="intake-attempts")(view)
    return limiter.limit(intake_limit, deduct_when=was_received)(view)


@blp.route("/quote-requests", methods=["POST"])
@limit_intake
@idempotent(blp)
@blp.arguments(QuoteRequestInSchema, location="json_or_form")
@blp.doc(
    requestBody={"content": {FORM_MIMETYPE: {"schema": QuoteRequestInSchema}}},
)
@blp.response(
    201,
    QuoteRequestCreatedSchema,
    headers={
        "Location": {"description": "The request's address.", "schema": {"type": "string"}},
        REPLAYED_HEADER: {
            "description": "`true` when this is the stored answer to an earlier request "
            "with the same Idempotency-Key.",
            "schema": {"type": "string", "enum": ["true"]},
        },
    },
)
@blp.alt_response(303, description="Form posts with `redirect_to`: back to that page.")
@blp.alt_response(415, description="The body is neither JSON nor a urlencoded form.")
@blp.alt_response(
    422,
    description="Invalid fields, or an Idempotency-Key already used with another body "
    "(code `idempotency_key_reused`).",
)
@blp.alt_response(429, description="Too many requests from this address; see Retry-After.")
def create_quote_request(
    data: dict[str, Any], claim: idempotency.Claim | None = None
) -> tuple[dict[str, Any], dict[str, str]]:
    """Ask for a free quote"""
    data.pop("redirect_to", None)  # where the browser goes next; not part of the request
    answer = partial(remember_answer, claim) if claim else None
    receipt = intake.receive_quote_request(data, answer=answer)
    mark_received()
    return created_body(receipt), {"Location": location_of(receipt)}


def created_body(receipt: intake.Receipt) -> dict[str, Any]:
    # Spam and possible duplicates look like any other success: each its own request.
    body: dict[str, Any] = {
        "reference": receipt.reference,
        "status": RequestStatus.RECEIVED,
        "created_at": receipt.created_at,
        "urgent": receipt.urgent,
    }
    if receipt.urgent:
        body["advice"] = receipt.advice
        body["emergency_number"] = receipt.emergency_number
    return body


def location_of(receipt: intake.Receipt) -> str:
    return url_for("intake.create_quote_request") + "/" + receipt.reference


def remember_answer(claim: idempotency.Claim, receipt: intake.Receipt) -> idempotency.Recording:
    """The 201 to store on the idempotency key, written with the request itself."""
    body = QuoteRequestCreatedSchema().dump(created_body(receipt))
    return idempotency.recording(
        claim, idempotency.StoredResponse(201, body, {"Location": location_of(receipt)})
    )


# A form post that names its page gets a 303 back there (api/form_redirect.py).
redirect_html_forms(blp, FORM_FIELDS)
