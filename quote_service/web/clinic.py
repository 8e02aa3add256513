"""/clinic/invitations/<token>: the invited clinic reads the request and answers (no JS needed)."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import Blueprint, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from quote_service.errors import ServiceError
from quote_service.extensions import db
from quote_service.models import DECLINE_REASONS, EVIDENCE_LEVELS, ClinicQuote, InvitationStatus
from quote_service.schemas.clinic import DeclineInSchema, QuoteInSchema
from quote_service.services import catalog, clinic_quotes, invitations
from quote_service.web.link_security import secure_headers

bp = Blueprint("clinic_pages", __name__, url_prefix="/clinic")
bp.after_request(secure_headers)

# Offered first in the currency list; any ISO 4217 code may be typed.
COMMON_CURRENCIES = ("EUR", "USD", "GBP", "XCD", "CHF")
DONE_MESSAGES = {
    "quote": "Thank you: your quote was received. You can replace it here until it is sent "
    "to the patient.",
    "decline": "Thank you: you declined this invitation. Another clinic will be asked.",
}


def _page(token: str, status: int = 200, **context: Any) -> tuple[str, int]:
    invitation = invitations.find(token)
    view = invitations.clinic_view(invitation)
    quote = db.session.execute(
        db.select(ClinicQuote).where(ClinicQuote.invitation_id == invitation.id)
    ).scalar_one_or_none()
    values = context.pop("values", None)
    if values is None and quote is not None:
        values = {field: getattr(quote, field) for field in clinic_quotes.QUOTE_FIELDS}
    return (
        render_template(
            "web/invitation.html",
            token=token,
            invitation=invitation,
            view=view,
            labels=invitations.labels(invitation),
            quote=quote,
            values=values or {},
            errors=context.pop("errors", {}),
            form=context.pop("form", None),
            items=catalog.quote_items(),
            currencies=COMMON_CURRENCIES,
            evidence_levels=EVIDENCE_LEVELS,
            decline_reasons=DECLINE_REASONS,
            done=DONE_MESSAGES.get(request.args.get("done", "")),
            **context,
        ),
        status,
    )


@bp.get("/invitations/<string:token>")
def invitation(token: str) -> tuple[str, int]:
    closed = invitations.find(token).status in (
        InvitationStatus.EXPIRED,
        InvitationStatus.WITHDRAWN,
    )
    return _page(token, 410 if closed else 200)


@bp.post("/invitations/<string:token>")
def answer(token: str) -> Response | tuple[str, int]:
    """One form post: `action=quote` or `action=decline`, parsed as the JSON API parses it."""
    action = request.form.get("action")
    form = request.form.to_dict(flat=False)
    data: dict[str, Any] = {
        key: values if key in ("includes", "excludes") else values[-1]
        for key, values in form.items()
        if key != "action"
    }
    try:
        if action == "decline":
            parsed = DeclineInSchema().load(data)
            invitations.decline(token, parsed["reason"], parsed.get("note"))
        elif action == "quote":
            clinic_quotes.submit(token, QuoteInSchema().load(data))
        else:
            return _page(token, 400, errors={"action": ["Choose to send a quote or to decline."]})
    except ma.ValidationError as error:
        return _page(token, 422, errors=_flat(error.messages), values=data, form=action)
    except ServiceError as error:
        if error.status in (404,):
            raise
        return _page(
            token,
            error.status,
            errors=error.fields,
            values=data,
            form=action,
            refusal=error.message,
        )
    return redirect(url_for("clinic_pages.invitation", token=token, done=action), code=303)


def _flat(messages: Any) -> dict[str, list[str]]:
    flat: dict[str, list[str]] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            if isinstance(value, dict):
                value = [
                    m for sub in value.values() for m in (sub if isinstance(sub, list) else [sub])
                ]
            flat[str(key)] = [str(m) for m in (value if isinstance(value, list) else [value])]
    return flat
