"""Plain HTML forms posting to a JSON endpoint: a 303 back to the form's page.

One entry, `redirect_html_forms(blp, fields)`: a urlencoded form that names an
allowed `redirect_to` page gets a 303 there instead of a JSON page, with what
happened in the query (the reference, or an error's code and the names of bad
fields, never their values).
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlencode, urlsplit, urlunsplit

from flask import Response, current_app, request
from werkzeug.exceptions import HTTPException
from werkzeug.urls import iri_to_uri

from quote_service.api.idempotency_key import REPLAYED_HEADER
from quote_service.api.parsing import FORM_MIMETYPE, Blueprint
from quote_service.schemas.intake import allowed_redirect


def redirect_html_forms(blp: Blueprint, fields: Iterable[str]) -> None:
    """Answer the blueprint's form posts that name a page to come back to with a 303 there.

    An after-request hook of `blp`, so it sees every answer of its views,
    errors and rate limits included. `fields` are the names a form may be
    told to highlight; anything else a client sent is not echoed. Left as
    JSON: bodies that are not forms (415), too large to read (413), or whose
    `redirect_to` is not on an allowed origin (CORS_ORIGINS) or was refused.
    Success carries the reference (and the emergency number of an urgent
    one); a replayed answer keeps `Idempotent-Replayed`.
    """
    names = tuple(fields)

    @blp.after_request
    def answer_html_forms(response: Response) -> Response:
        if request.mimetype != FORM_MIMETYPE or response.status_code == 413:
            return response
        target = form_redirect_target()
        if target is None:
            return response
        outcome = form_outcome(response, names)
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


def form_outcome(response: Response, fields: tuple[str, ...]) -> dict[str, str] | None:
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
    highlighted = [name for name in fields if name in invalid]
    if highlighted:
        outcome["fields"] = ",".join(highlighted)
    return outcome


def with_query(url: str, params: dict[str, str]) -> str:
    """`url` with `params` appended to its query (`?` or `&`), before any fragment."""
    parts = urlsplit(url)
    extra = urlencode(params, safe=",")
    query = f"{parts.query}&{extra}" if parts.query else extra
    return iri_to_uri(urlunsplit(parts._replace(query=query)))
