"""A clinic's answer to an invitation, as JSON: the link's token is the only credential."""

from __future__ import annotations

from typing import Any

from quote_service.api.parsing import FORM_MIMETYPE, Blueprint
from quote_service.schemas.clinic import (
    DeclineInSchema,
    InvitationAnsweredSchema,
    InvitationOutSchema,
    QuoteCreatedSchema,
    QuoteInSchema,
)
from quote_service.services import clinic_quotes, invitations

blp = Blueprint(
    "clinic",
    __name__,
    url_prefix="/api/v1/clinic",
    description="Clinics: read an invitation, send a quote or decline (the link's token)",
)

INVITATION = "/invitations/<string:token>"
CLOSED = "The invitation has expired or was withdrawn (code `invitation_closed`)."


@blp.route(INVITATION)
@blp.response(200, InvitationOutSchema)
@blp.alt_response(410, description=CLOSED)
def get_invitation(token: str) -> dict[str, Any]:
    """The request a clinic is invited to quote for: never the patient's contact details"""
    invitation = invitations.find(token)
    invitations.check_open(invitation)
    return invitations.clinic_view(invitation)


@blp.route(f"{INVITATION}/quote", methods=["POST"])
@blp.arguments(QuoteInSchema, location="json_or_form")
@blp.doc(requestBody={"content": {FORM_MIMETYPE: {"schema": QuoteInSchema}}})
@blp.response(201, QuoteCreatedSchema)
@blp.alt_response(200, schema=QuoteCreatedSchema, description="An earlier quote was replaced.")
@blp.alt_response(
    409,
    description="The quote was already sent to the patient (`quote_already_sent`), or the "
    "invitation was declined (`invitation_answered`).",
)
@blp.alt_response(410, description=CLOSED)
def submit_quote(data: dict[str, Any], token: str) -> tuple[dict[str, Any], int]:
    """Send the clinic's quote; until it reaches the patient, a new one replaces it"""
    quote, created = clinic_quotes.submit(token, data)
    return {"quote_id": quote.id, "status": quote.status}, 201 if created else 200


@blp.route(f"{INVITATION}/decline", methods=["POST"])
@blp.arguments(DeclineInSchema, location="json_or_form")
@blp.doc(requestBody={"content": {FORM_MIMETYPE: {"schema": DeclineInSchema}}})
@blp.response(200, InvitationAnsweredSchema)
@blp.alt_response(409, description="A quote was already sent (`invitation_answered`).")
@blp.alt_response(410, description=CLOSED)
def decline(data: dict[str, Any], token: str) -> dict[str, Any]:
    """Decline the invitation, with a reason; the next clinic is asked"""
    invitation = invitations.decline(token, data["reason"], data.get("note"))
    return {"reference": invitations.reference_of(invitation), "status": invitation.status}
