"""The home page and the hosted quote form (`/form`, `/form/<lang>`).

The form works without JavaScript: it posts to its own address, which
answers with the same page, the errors in a summary at the top and next to
each field, every value kept (422); or sends the browser on to the success
page (303). With JavaScript, `static/form/form.js` filters the conditions
and disclaimers to the chosen destination and submits without a reload.
The views parse with the intake's schema and call the intake's service, so
the page and the API take the same requests and say the same things.
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import Blueprint, Response, current_app, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import HTTPException

from quote_service.api.intake import created_body, limit_intake, mark_received
from quote_service.errors import InvalidFields, NotFound
from quote_service.i18n import (
    DEFAULT_LANGUAGE,
    LANGUAGES,
    current_language,
    supported,
    use_language,
)
from quote_service.schemas.intake import QuoteRequestInSchema, origin_of
from quote_service.services import catalog as catalog_service
from quote_service.services import intake
from quote_service.web import receipts
from quote_service.web.form import GENERAL, FormPage, language_name

blp = Blueprint("web", __name__)

TOO_MANY = _l("You have sent several requests in a short time. Please try again later.")


@blp.after_request
def security_headers(response: Response) -> Response:
    """A CSP without inline scripts; only this site and the API's CORS origins may frame it."""
    origins = [o for o in (origin_of(x) for x in current_app.config["CORS_ORIGINS"]) if o]
    response.headers["Content-Security-Policy"] = "; ".join(
        (
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "connect-src 'self'",
            "form-action 'self'",
            "base-uri 'none'",
            "object-src 'none'",
            "frame-ancestors " + " ".join(["'self'", *origins]),
        )
    )
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@blp.context_processor
def language_context() -> dict[str, Any]:
    """The page language and the language menu, for every page of this blueprint."""
    return {
        "current_language": current_language(),
        "languages": [(code, language_name(code)) for code in LANGUAGES],
        "organisation": catalog_service.organisation(),
    }


@blp.get("/")
def home() -> str:
    """A small page for people who open the service's address."""
    return render_template("web/home.html", docs=current_app.config.get("PUBLIC_API_DOCS", True))


@blp.get("/form")
def form_default() -> str:
    """The form in `?lang=`, else in the browser's language, else English."""
    language = (
        supported(request.args.get("lang", ""))
        or request.accept_languages.best_match(LANGUAGES)
        or DEFAULT_LANGUAGE
    )
    return show_form(language)


@blp.get("/form/<lang>")
def form_page(lang: str) -> str:
    return show_form(page_language(lang))


@blp.post("/form/<lang>")
@limit_intake
def form_submit(lang: str) -> Any:
    language = page_language(lang)
    values = request.form.to_dict(flat=True)
    values.pop("redirect_to", None)  # a JSON API notion; this page answers for itself
    page = FormPage(language, values)
    try:
        data = QuoteRequestInSchema().load(values)
        receipt = intake.receive_quote_request(data)
    except ma.ValidationError as error:
        page.errors = as_page_errors(error.messages)
    except InvalidFields as error:
        page.errors = as_page_errors(error.fields)
    else:
        mark_received()
        token = receipts.seal(created_body(receipt), data["email"])
        return redirect(url_for("web.form_sent", lang=language, receipt=token), 303)
    return render_template("web/form.html", **page.context()), 422


@blp.get("/form/<lang>/sent")
def form_sent(lang: str) -> Any:
    language = page_language(lang)
    receipt = receipts.unseal(request.args.get("receipt", ""))
    if receipt is None:
        return redirect(url_for("web.form_page", lang=language), 303)
    hours = current_app.config["SLA_FIRST_RESPONSE_HOURS"]
    return render_template("web/sent.html", receipt=receipt, hours=hours, language=language)


@blp.errorhandler(429)
def too_many(error: HTTPException) -> Any:
    """The form's own rate limit, answered with the page rather than JSON."""
    lang = (request.view_args or {}).get("lang", "")
    page = FormPage(supported(lang) or DEFAULT_LANGUAGE, request.form.to_dict(flat=True))
    use_language(page.language)
    page.notice = str(TOO_MANY)
    # Retry-After is added to every 429 (extensions.retry_after_on_refusals).
    return Response(render_template("web/form.html", **page.context()), status=429)


def page_language(lang: str) -> str:
    """The page's language, which is also the language of everything it says."""
    if lang not in LANGUAGES:
        raise NotFound(_l("There is nothing at this address."))
    use_language(lang)
    return lang


def show_form(language: str) -> str:
    use_language(language)
    page = FormPage(language, {"preferred_language": language})
    return render_template("web/form.html", **page.context())


def as_page_errors(messages: Any) -> dict[str, list[str]]:
    """marshmallow's or a service's messages as `{field: [text]}` in the page's language."""
    errors: dict[str, list[str]] = {}
    for name, value in (messages or {}).items():
        texts = value if isinstance(value, list | tuple) else [value]
        key = GENERAL if name == "_schema" else str(name)
        errors.setdefault(key, []).extend(str(text) for text in texts)
    return errors
