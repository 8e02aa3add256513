"""Our blueprints: request parsing (JSON or HTML form bodies, refused cleanly) and
the error responses every operation documents."""

from __future__ import annotations

import http
import json
from collections.abc import Callable, Mapping
from typing import Any

import flask
import flask_smorest
import marshmallow as ma
from flask_babel import lazy_gettext as _l
from webargs import core
from webargs.flaskparser import FlaskParser, abort, is_json_request

FORM_MIMETYPE = "application/x-www-form-urlencoded"
BODY_LOCATIONS = {"json", "json_or_form", "form"}
# No field takes a longer number; Python's own limit (4,300 digits) is a ValueError deep
# in the decoder, and converting very long ones is slow.
MAX_JSON_INTEGER_DIGITS = 100


class UnacceptableJson(ValueError):
    """Valid JSON syntax that the service refuses as malformed input."""


def _parse_int(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_JSON_INTEGER_DIGITS:
        raise UnacceptableJson(
            _l(
                "Numbers in the JSON body may have at most %(digits)s digits.",
                digits=MAX_JSON_INTEGER_DIGITS,
            )
        )
    return int(digits)


def _refuse_constant(name: str) -> None:
    # NaN and Infinity are not JSON (RFC 8259), although Python's decoder reads them.
    raise UnacceptableJson(_l("NaN and Infinity are not JSON numbers."))


def _holds_lone_surrogate(document: Any) -> bool:
    """Whether any key or string holds a lone surrogate (`"\\ud800"`), which is no text.

    Iterative: a deep document must not hit the recursion limit here either.
    """
    pending = [document]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def loads_strictly(raw: bytes) -> Any:
    """JSON as webargs reads it, refusing what PostgreSQL or Python cannot take.

    UnicodeDecodeError and JSONDecodeError are webargs' "Invalid JSON body";
    UnacceptableJson says what else is wrong.
    """
    document = json.loads(
        raw.decode("utf-8"), parse_int=_parse_int, parse_constant=_refuse_constant
    )
    if _holds_lone_surrogate(document):
        raise UnacceptableJson(
            "The JSON body holds a broken character (a lone UTF-16 surrogate such as \\ud800)."
        )
    return document


class Parser(FlaskParser):
    """webargs' Flask parser, hardened for untrusted bodies.

    - `json_or_form` takes JSON or a urlencoded form and answers 415 for any
      other body, instead of silently reading an empty form.
    - `json` answers 415 for a body of another media type, instead of reading
      no body at all (which an action without required fields would accept).
    - JSON nested deeper than Python's recursion limit is a 400, not a 500;
      so are integers of more than 100 digits, NaN and Infinity, and strings
      holding a lone surrogate (which no database can store as text).
    """

    DEFAULT_VALIDATION_MESSAGE = _l("This value is not valid.")

    def _handle_invalid_json_error(
        self, error: Exception, req: flask.Request, *args: Any, **kwargs: Any
    ) -> Any:
        abort(400, exc=error, messages={"json": [_l("The body is not valid JSON.")]})

    def load_json(self, req: flask.Request, schema: ma.Schema) -> Any:
        if not is_json_request(req) and req.get_data(cache=True):
            abort(415, message=_l("Send the body as application/json."))
        return super().load_json(req, schema)

    def _raw_load_json(self, req: flask.Request) -> Any:
        if not is_json_request(req):
            return core.missing
        try:
            return loads_strictly(req.get_data(cache=True))
        except RecursionError:
            abort(400, messages={"json": [_l("The JSON body is nested too deeply.")]})
        except UnacceptableJson as error:
            abort(400, messages={"json": [str(error)]})

    def load_json_or_form(self, req: flask.Request, schema: ma.Schema) -> Any:
        if is_json_request(req):
            data = self.load_json(req, schema)
            # An empty JSON body is an empty object: every required field missing.
            return {} if data is core.missing else data
        if req.mimetype == FORM_MIMETYPE:
            return self.load_form(req, schema)
        if not req.mimetype and not req.get_data(cache=True):
            return {}
        abort(415)


class Blueprint(flask_smorest.Blueprint):
    """flask-smorest's Blueprint, documenting the errors the shared layers answer with.

    Each operation lists the statuses it can really answer, so the OpenAPI has
    no catch-all `default` and a client (or a fuzzer) can rely on the list:

    - a body: 400 (malformed), 413 (too large), 415 (media type), 422;
    - a bearer token: 401, and 403 for an admin's;
    - a path parameter: 404;
    - under /api/: 503 when the database is down.

    Under /api/ every error is the error envelope, so an error a view documents
    with only a description gets its schema here. (/readyz, at the root, has a
    503 body of its own.) A view adds what only it answers (409, 412, 428...).
    """

    ARGUMENTS_PARSER = Parser()
    # Documented as JSON; the form alternative is added per operation.
    DEFAULT_LOCATION_CONTENT_TYPE_MAPPING = {
        **flask_smorest.Blueprint.DEFAULT_LOCATION_CONTENT_TYPE_MAPPING,
        "json_or_form": "application/json",
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # First: flask-smorest's own callbacks consume the argument and
        # response information this one reads and extends.
        self._prepare_doc_cbks.insert(0, self._prepare_error_responses_doc)

    def arguments(self, schema: Any, *, location: str = "json", **kwargs: Any) -> Any:
        """flask-smorest's `arguments`; a query string's unknown parameters are a 422.

        webargs excludes unknown query parameters by default, so a misspelt
        filter (`?destinaton=BE`) would answer the whole unfiltered list. Here
        it is a 422 naming the parameter, on every list. A view that must take
        strangers (a public page behind caches) passes `unknown=ma.EXCLUDE`.
        """
        if location == "query":
            kwargs.setdefault("unknown", ma.RAISE)
        return super().arguments(schema, location=location, **kwargs)

    def add_url_rule(
        self,
        rule: str,
        endpoint: str | None = None,
        view_func: Callable[..., Any] | None = None,
        provide_automatic_options: bool | None = None,
        **options: Any,
    ) -> None:
        super().add_url_rule(rule, endpoint, view_func, provide_automatic_options, **options)
        # The documentation callbacks see an operation's doc, not its rule.
        for method, doc in self._docs[self._endpoints[-1]].items():
            if method != "parameters":
                doc["rule"] = rule

    def _prepare_error_responses_doc(
        self, doc: dict[str, Any], doc_info: dict[str, Any], *, api: Any, **kwargs: Any
    ) -> dict[str, Any]:
        statuses = set()
        locations = {p["in"] for p in doc_info.get("arguments", {}).get("parameters", [])}
        if locations & BODY_LOCATIONS:
            statuses |= {400, 413, 415}
        security = doc_info.get("manual_doc", {}).get("security") or []
        if security:
            statuses.add(401)
        if any("adminToken" in requirement for requirement in security):
            statuses.add(403)
        if "<" in doc_info.get("rule", ""):
            statuses.add(404)
        in_api = (self.url_prefix or "").startswith("/api/")
        if in_api:
            statuses.add(503)

        responses = doc_info.setdefault("response", {}).setdefault("responses", {})
        documented = {int(status) for status in responses}
        documented |= {int(status) for status in doc_info.get("arguments", {}).get("responses", {})}
        for status in sorted(statuses - documented):
            # flask-smorest registers one error response per status, named after it.
            responses[status] = [http.HTTPStatus(status).name]
        if in_api:
            for status, entries in responses.items():
                for entry in entries:
                    if int(status) >= 400 and isinstance(entry, Mapping) and "schema" not in entry:
                        entry["schema"] = api.ERROR_SCHEMA
        return doc
