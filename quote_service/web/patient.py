"""/p/<token>: the patient's own page, in their language, usable without JavaScript.

It shows what `GET /api/v1/patient/<token>` answers and posts its forms back
to its own address, calling the services the JSON API calls. As on the
clinics' pages, the token in the address is the only credential: a forged
post from another site would need the secret token, so there is no session
and no separate CSRF token, and the page's CSP only lets forms post here.
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from babel.dates import format_date
from flask import Blueprint, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from quote_service.api.patient import patient_link_limit
from quote_service.errors import ServiceError
from quote_service.extensions import db, limiter
from quote_service.i18n import DEFAULT_LANGUAGE, current_language, supported, use_language
from quote_service.models import PrivacyRequest, QuoteRequest
from quote_service.schemas.patient import InterestInSchema, PrivacyRequestInSchema
from quote_service.services import catalog, patient_link, patient_tokens
from quote_service.web.link_security import secure_headers
from quote_service.web.views import as_page_errors

bp = Blueprint("patient_pages", __name__, url_prefix="/p")
bp.after_request(secure_headers)


@bp.context_processor
def who_we_are() -> dict[str, Any]:
    """The facilitator's name, address, contact and privacy notice, at the foot of the page."""
    return {"organisation": catalog.organisation()}


DONE_MESSAGES = {
    "interest": _l(
        "Thank you: our coordinators know which quote interests you. A coordinator will get "
        "in touch with you; you are under no obligation."
    ),
    "withdrawal": _l(
        "Your request is withdrawn. We will send you nothing more about it, and the clinics "
        "can no longer answer it."
    ),
    "copy": _l(
        "We have received your request for a copy of your data. We will send it to you by "
        "%(due)s at the latest."
    ),
    "erasure": _l(
        "We have received your request to erase your data. We will erase it by %(due)s at the "
        "latest; this page will then no longer exist."
    ),
}
CONFIRM_WITHDRAWAL = _l("Tick the box to confirm that you want to withdraw your request.")
CHOOSE_ACTION = _l("Choose what you want to do.")


def _language(quote_request: QuoteRequest) -> str:
    language = supported(quote_request.preferred_language) or DEFAULT_LANGUAGE
    use_language(language)
    return language


def _due(quote_request: QuoteRequest, kind: str) -> str | None:
    """The due date of the patient's latest request of this kind, for the notice."""
    due = db.session.execute(
        db.select(PrivacyRequest.due_at)
        .where(PrivacyRequest.quote_request_id == quote_request.id, PrivacyRequest.kind == kind)
        .order_by(PrivacyRequest.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    return format_date(due, format="long", locale=current_language()) if due else None


def _page(token: str, status: int = 200, **context: Any) -> tuple[str, int]:
    quote_request = patient_tokens.find(token)
    language = _language(quote_request)
    done_key = request.args.get("done", "")
    done = None
    if done_key in DONE_MESSAGES:
        due = _due(quote_request, done_key) if done_key in ("copy", "erasure") else None
        done = str(DONE_MESSAGES[done_key]) % {"due": due or ""}
    return (
        render_template(
            "web/patient.html",
            token=token,
            page_language=language,
            view=patient_link.page(quote_request, language),
            created=format_date(quote_request.created_at, format="long", locale=language),
            withdrawn=(
                format_date(quote_request.consent_withdrawn_at, format="long", locale=language)
                if quote_request.consent_withdrawn_at
                else None
            ),
            done=done,
            errors=context.pop("errors", {}),
            refusal=context.pop("refusal", None),
            **context,
        ),
        status,
    )


@bp.get("/<string:token>")
def show(token: str) -> tuple[str, int]:
    return _page(token)


@bp.post("/<string:token>")
@limiter.limit(patient_link_limit)
def act(token: str) -> Response | tuple[str, int]:
    """One form post: `action=interest` (quote_id), `withdrawal` (confirm) or `privacy` (kind)."""
    # Messages below are put into the patient's language as soon as they are made.
    _language(patient_tokens.find(token))
    action = request.form.get("action")
    data = {k: v for k, v in request.form.to_dict(flat=True).items() if k != "action"}
    try:
        if action == "interest":
            patient_link.express_interest(token, InterestInSchema().load(data)["quote_id"])
            done = "interest"
        elif action == "withdrawal":
            if data.get("confirm") != "yes":
                return _page(token, 422, errors={"confirm": [str(CONFIRM_WITHDRAWAL)]})
            patient_link.withdraw(token)
            done = "withdrawal"
        elif action == "privacy":
            done = PrivacyRequestInSchema().load(data)["kind"]
            patient_link.request_privacy(token, done)
        else:
            return _page(token, 400, errors={"action": [str(CHOOSE_ACTION)]})
    except ma.ValidationError as error:
        return _page(token, 422, errors=as_page_errors(error.messages))
    except ServiceError as error:
        if error.status == 404:
            raise
        return _page(
            token, error.status, errors=as_page_errors(error.fields), refusal=str(error.message)
        )
    return redirect(url_for("patient_pages.show", token=token, done=done), code=303)


@bp.errorhandler(ServiceError)
def refused(error: ServiceError) -> tuple[str, int]:
    """An unknown, altered or erased link: a page that says so, in the visitor's language."""
    return render_template(
        "web/patient_missing.html", page_language=current_language(), message=str(error.message)
    ), error.status


@bp.errorhandler(429)
def too_many(error: HTTPException) -> Response:
    # Retry-After is added to every 429 (extensions.retry_after_on_refusals).
    return Response(
        render_template(
            "web/patient_missing.html",
            page_language=current_language(),
            message=str(_l("Too many requests; try again later.")),
        ),
        status=429,
    )
