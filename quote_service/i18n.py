"""The language of what people read: which one a request gets, and the texts in it.

Messages are gettext catalogs under `quote_service/translations/` (extracted
with pybabel from the code and the page templates, compiled to `.mo` by
`make install` and the Dockerfile). The msgids are the English texts, so
English needs no catalog.

A request's language, in this order:

1. a page that names its language (`/form/fr`) uses it for everything;
2. the intake's `preferred_language`, when it is one of ours (a French
   patient posting from a Dutch website reads their errors in French);
3. `Accept-Language`;
4. English.

Only public endpoints negotiate: the coordinators' API and console answer in
English, so a coordinator's tool never gets half-translated errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from babel import Locale
from flask import Flask, g, has_request_context, request
from flask_babel import get_locale, refresh
from werkzeug.exceptions import HTTPException

from quote_service.extensions import babel

LANGUAGES = ("en", "fr", "nl", "de")
DEFAULT_LANGUAGE = "en"
# Blueprints whose answers people (patients, website visitors) read.
PUBLIC_BLUEPRINTS = frozenset(
    {"catalog", "intake", "operations", "web", "api-docs", "patient", "patient_pages"}
)
# Endpoints whose body may carry `preferred_language`.
BODY_LANGUAGE_ENDPOINTS = frozenset({"intake.create_quote_request"})
FORM_MIMETYPE = "application/x-www-form-urlencoded"


def supported(value: Any) -> str | None:
    """`value` if it names one of our languages (`fr`, `FR`, `fr-BE`), as its code."""
    if not isinstance(value, str):
        return None
    primary = value.strip().replace("_", "-").split("-")[0].lower()
    return primary if primary in LANGUAGES else None


def use_language(language: str) -> None:
    """Make `language` the language of the rest of this request (pages that name one)."""
    g.page_language = language
    refresh()  # forget a locale Flask-Babel chose earlier in this request


def select_locale() -> str:
    """Flask-Babel's locale selector: see the module docstring for the order."""
    if not has_request_context():
        return DEFAULT_LANGUAGE
    page = g.get("page_language")
    if page:
        return page
    if not is_public():
        return DEFAULT_LANGUAGE
    return body_language() or request.accept_languages.best_match(LANGUAGES) or DEFAULT_LANGUAGE


def is_public() -> bool:
    """Whether this request is for a public endpoint; unmatched URLs (404, 405) are."""
    if request.url_rule is None or request.blueprint is None:
        return True
    return request.blueprint in PUBLIC_BLUEPRINTS


def body_language() -> str | None:
    """`preferred_language` of the intake's body when it is exactly one of our languages."""
    if request.endpoint not in BODY_LANGUAGE_ENDPOINTS or request.method != "POST":
        return None
    try:
        # Cached, so the view (and the idempotency check) still read the same bytes.
        request.get_data(cache=True)
        if request.is_json:
            body: Any = request.get_json(silent=True)
        elif request.mimetype == FORM_MIMETYPE:
            body = request.form
        else:
            return None
    except (HTTPException, RecursionError, ValueError):
        return None  # too large, too deep or not text: the view answers it
    if not isinstance(body, Mapping):
        return None
    value = body.get("preferred_language")
    if isinstance(value, str) and value.strip() in LANGUAGES:
        return value.strip()
    return None


def current_language() -> str:
    locale = get_locale()
    return locale.language if locale is not None else DEFAULT_LANGUAGE


def current_locale() -> Locale:
    return get_locale() or Locale.parse(DEFAULT_LANGUAGE)


def input_locale() -> Locale:
    """The locale of numbers and dates people typed: `Content-Language` of the body, else
    the request's language (a form page's language, for its own posts)."""
    if has_request_context():
        declared = supported(request.headers.get("Content-Language", "").split(",")[0])
        if declared:
            return Locale.parse(declared)
    return current_locale()


def init_app(app: Flask) -> None:
    # The catalogs are `translations/` beside this module (Flask-Babel's default).
    babel.init_app(app, locale_selector=select_locale, default_locale=DEFAULT_LANGUAGE)
