"""The patient's link as JSON: their request, their interest, withdrawal, privacy requests.

The link's token is the only credential, as for the clinics' invitations.
"""

from __future__ import annotations

from typing import Any

from flask import current_app

from quote_service.api.parsing import FORM_MIMETYPE, Blueprint
from quote_service.extensions import limiter
from quote_service.schemas.patient import (
    InterestInSchema,
    InterestOutSchema,
    PatientViewSchema,
    PrivacyRequestInSchema,
    PrivacyRequestOutSchema,
    WithdrawalInSchema,
    WithdrawalOutSchema,
)
from quote_service.services import patient_link, patient_tokens

blp = Blueprint(
    "patient",
    __name__,
    url_prefix="/api/v1/patient",
    description="Patients: their own request by the link's token (the only credential)",
)

LINK = "/<string:token>"
LIMITED = "Too many posts from this address; see Retry-After."


def patient_link_limit() -> str:
    return current_app.config["RATE_LIMIT_PATIENT_LINK"]


def _consent(request: Any) -> dict[str, Any]:
    return {
        "given_at": request.consented_at,
        "version": request.consent_version,
        "withdrawn_at": request.consent_withdrawn_at,
    }


@blp.route(LINK)
@blp.response(200, PatientViewSchema)
def get_request(token: str) -> dict[str, Any]:
    """The patient's request: status, clinics asked, the quotes sent, the consent"""
    request = patient_tokens.find(token)
    return patient_link.view(request, request.preferred_language)


@blp.route(f"{LINK}/interest", methods=["POST"])
@limiter.limit(patient_link_limit)
@blp.arguments(InterestInSchema, location="json_or_form")
@blp.doc(requestBody={"content": {FORM_MIMETYPE: {"schema": InterestInSchema}}})
@blp.response(200, InterestOutSchema)
@blp.alt_response(
    422,
    description="Invalid fields, or a quote that was not sent to this patient "
    "(code `quote_not_offered`).",
)
@blp.alt_response(409, description="The request has ended (code `request_closed`).")
@blp.alt_response(429, description=LIMITED)
def interest(data: dict[str, Any], token: str) -> dict[str, Any]:
    """Say which quote interests you: the coordinators are told (once per quote)"""
    request, quote = patient_link.express_interest(token, data["quote_id"])
    return {"reference": request.reference, "quote_id": quote.id, "interested": True}


@blp.route(f"{LINK}/withdrawal", methods=["POST"])
@limiter.limit(patient_link_limit)
@blp.arguments(WithdrawalInSchema, location="json_or_form")
@blp.doc(requestBody={"content": {FORM_MIMETYPE: {"schema": WithdrawalInSchema}}})
@blp.response(200, WithdrawalOutSchema)
@blp.alt_response(409, description="Already withdrawn (code `already_withdrawn`).")
@blp.alt_response(429, description=LIMITED)
def withdrawal(data: dict[str, Any], token: str) -> dict[str, Any]:
    """Withdraw the request and the consent: nothing more is sent, the clinics are stopped"""
    request = patient_link.withdraw(token)
    return {"reference": request.reference, "status": request.status, "consent": _consent(request)}


@blp.route(f"{LINK}/privacy-requests", methods=["POST"])
@limiter.limit(patient_link_limit)
@blp.arguments(PrivacyRequestInSchema, location="json_or_form")
@blp.doc(requestBody={"content": {FORM_MIMETYPE: {"schema": PrivacyRequestInSchema}}})
@blp.response(202, PrivacyRequestOutSchema)
@blp.alt_response(429, description=LIMITED)
def privacy_request(data: dict[str, Any], token: str) -> Any:
    """Ask for a copy of your data or its erasure: due within one month"""
    recorded, _created = patient_link.request_privacy(token, data["kind"])
    return recorded
