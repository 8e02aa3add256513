"""POST /api/v1/quote-requests: the public intake of website forms."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial, wraps
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from flask import Response, current_app, g, jsonify, request, url_for
from werkzeug.exceptions import HTTPException
from werkzeug.urls import iri_to_uri

from quote_service.api.parsing import FORM_MIMETYPE, Blueprint
from quote_service.extensions import limiter
from quote_service.models import RequestStatus
from quote_service.safety.signs import ruleset
from quote_service.schemas.intake import (
    QuoteRequestCreatedSchema,
    QuoteRequestInSchema,
    allowed_redirect,
)
from quote_service.services import idempotency, intake

blp = Blueprint(
    "intake", __name__, url_prefix="/api/v1", description="Public intake of quote requests"
)
# Compile the urgent-sign rules when the app is built, not on a patient's first request.
blp.record_once(lambda state: ruleset())

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
IDEMPOTENCY_KEY_PARAMETER = {
    "name": IDEMPOTENCY_HEADER,
    "in": "header",
    "required": False,
    "description": "Any unique value, 1-255 printable ASCII characters, e.g. a UUID "
    '(IETF draft "The Idempotency-Key HTTP Header Field"). Sending the same request '
    "again with the same key returns the first response (with `Idempotent-Replayed: "
    "true`) instead of a second request. Keys are kept 24 hours; a request refused "
    "for its fields frees its key for a corrected retry.",
    "schema": {"type": "string", "minLength": 1, "maxLength": idempotency.MAX_KEY_LENGTH},
}
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


def idempotent(view: Callable[..., Any]) -> Callable[..., Any]:
    """Run the view once per Idempotency-Key; a retry gets the first answer back.

    It runs before the body is parsed: a replay must not depend on the body
    still passing today's checks, and a body refused for its fields must free
    the key.
    """

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        header = request.headers.get(IDEMPOTENCY_HEADER)
        if header is None:
            return view(*args, **kwargs)
        key = idempotency.check_key(header)
        # Read (and cache) the raw body first: form parsing would consume it.
        body = request.get_data(cache=True)
        outcome = idempotency.claim(key, idempotency.fingerprint(request.content_type or "", body))
        if isinstance(outcome, idempotency.StoredResponse):
            return replay(outcome)
        try:
            return view(*args, claim=outcome, **kwargs)
        except Exception:
            idempotency.release(outcome)
            raise

    return wrapper


@blp.route("/quote-requests", methods=["POST"])
@limit_intake
@blp.doc(parameters=[IDEMPOTENCY_KEY_PARAMETER])
@blp.alt_response(303, description="Form posts with `redirect_to`: back to that page.")
@blp.alt_response(409, description="A request with this Idempotency-Key is still being processed.")
@blp.alt_response(
    422,
    description="Invalid fields, or an Idempotency-Key already used with another body "
    "(code `idempotency_key_reused`).",
)
@blp.alt_response(429, description="Too many requests from this address; see Retry-After.")
@idempotent
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
@blp.alt_response(415, description="The body is neither JSON nor a urlencoded form.")
def create_quote_request(
    data: dict[str, Any], claim: idempotency.Claim | None = None
) -> tuple[dict[str, Any], dict[str, str]]:
    """Ask for a free quote"""
    data.pop("redirect_to", None)  # where the browser goes next; not part of the request
    before_commit = partial(remember_answer, claim) if claim else None
    receipt = intake.receive_quote_request(data, before_commit=before_commit)
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


def remember_answer(claim: idempotency.Claim, receipt: intake.Receipt) -> None:
    """Store the 201 on the idempotency key, in the transaction that stores the request."""
    body = QuoteRequestCreatedSchema().dump(created_body(receipt))
    idempotency.record(
        claim, idempotency.StoredResponse(201, body, {"Location": location_of(receipt)})
    )


def replay(stored: idempotency.StoredResponse) -> Response:
    response = jsonify(stored.body) if stored.body is not None else Response()
    response.status_code = stored.status
    response.headers.update(stored.headers)
    response.headers[REPLAYED_HEADER] = "true"
    return response


# --- Plain HTML forms ----------------------------------------------------------


@blp.after_request
def answer_html_forms(response: Response) -> Response:
    """A form that names a page to come back to gets a 303 there, never a JSON page.

    Success carries the reference, an error its code (and the names of bad
    fields, never their values). Left as JSON: bodies that are not forms
    (415), too large to read (413), or whose `redirect_to` is not allowed.
    """
    if request.mimetype != FORM_MIMETYPE or response.status_code == 413:
        return response
    target = form_redirect_target()
    if target is None:
        return response
    outcome = form_outcome(response)
    if outcome is None:
        return response
    redirect = Response(status=303, headers={"Location": with_query(target, outcome)})
    if REPLAYED_HEADER in response.headers:
        redirect.headers[REPLAYED_HEADER] = response.headers[REPLAYED_HEADER]
    return redirect


def form_redirect_target() -> str | None:
    """The form's `redirect_to`, if it is on an allowed origin."""
    try:
        target = request.form.get("redirect_to", "").strip()
    except HTTPException:  # a body too large to parse (rate limits answer before reading it)
        return None
    if target and allowed_redirect(target, current_app.config["CORS_ORIGINS"]):
        return target
    return None


def form_outcome(response: Response) -> dict[str, str] | None:
    """Query parameters telling the form's page what happened."""
    body = response.get_json(silent=True)
    if not isinstance(body, dict):
        return None
    if response.status_code == 201 and "reference" in body:
        if body.get("urgent"):
            # The page must show the emergency advice first; the number is no secret.
            return {
                "reference": body["reference"],
                "urgent": "1",
                "emergency_number": str(body.get("emergency_number", "")),
            }
        return {"reference": body["reference"]}
    error = body.get("error")
    if response.status_code < 400 or not isinstance(error, dict):
        return None
    invalid = error.get("fields") or {}
    if "redirect_to" in invalid:
        return None  # never send a browser to an address we refused
    outcome = {"error": str(error.get("code", "error"))}
    fields = [name for name in FORM_FIELDS if name in invalid]
    if fields:
        outcome["fields"] = ",".join(fields)
    return outcome


def with_query(url: str, params: dict[str, str]) -> str:
    """`url` with `params` appended to its query (`?` or `&`), before any fragment."""
    parts = urlsplit(url)
    extra = urlencode(params, safe=",")
    query = f"{parts.query}&{extra}" if parts.query else extra
    return iri_to_uri(urlunsplit(parts._replace(query=query)))
