"""Domain exceptions and the one JSON error envelope every layer answers with.

`{"error": {"code": "...", "message": "...", "fields": {"email": ["..."]}}}`
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, current_app, jsonify
from flask_babel import lazy_gettext as _l
from sqlalchemy.exc import DBAPIError, OperationalError
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

# Messages may be lazy strings (flask_babel.lazy_gettext): they are put into the
# language of the request when the answer is made (`error_response`).
FieldErrors = dict[str, list[Any]]


class ServiceError(Exception):
    """A refusal a service raises; it knows its own HTTP status, code and headers."""

    status = 400
    code = "bad_request"
    headers: dict[str, str] = {}

    def __init__(
        self,
        message: Any,
        fields: FieldErrors | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or {}
        # Extra members of the error object, e.g. the allowed transitions of a 409.
        self.extra = extra or {}


class InvalidFields(ServiceError):
    status = 422
    code = "validation_error"

    def __init__(self, fields: FieldErrors, message: Any = None) -> None:
        super().__init__(message or _l("Some fields are invalid."), fields)


class Unauthorized(ServiceError):
    status = 401
    code = "unauthorized"
    headers = {"WWW-Authenticate": "Bearer"}


class TokenExpired(Unauthorized):
    code = "token_expired"


class Forbidden(ServiceError):
    status = 403
    code = "forbidden"


class NotFound(ServiceError):
    status = 404
    code = "not_found"


class Conflict(ServiceError):
    """A refusal because of the current state. Raise a subclass: each cause has its own code."""

    status = 409
    code = "conflict"


class TransitionNotAllowed(Conflict):
    """A workflow move the request's status does not allow; `allowed` lists those it does."""

    code = "transition_not_allowed"


class RerouteNotAllowed(Conflict):
    """Routing again a request that was quoted or ended."""

    code = "reroute_not_allowed"


class NotAcknowledgedYet(Conflict):
    """A resend of an acknowledgement the worker has not sent a first time."""

    code = "not_acknowledged_yet"


class ResendInFlight(Conflict):
    """Another resend of the same acknowledgement is being committed."""

    code = "resend_in_flight"


class RequestErased(Conflict):
    """The request's personal data was erased: nothing can be sent to it."""

    code = "request_erased"


class RequestNotOpen(Conflict):
    """A patient email for a request that ended (withdrawn, rejected, closed, spam)."""

    code = "request_not_open"


class ReopenNotAllowed(Conflict):
    """Only a closed or rejected request (not a merged duplicate) can be reopened."""

    code = "reopen_not_allowed"


class ReopenTooLate(Conflict):
    """A closed or rejected request ended longer than REOPEN_DAYS ago."""

    code = "reopen_too_late"


class Gone(ServiceError):
    status = 410
    code = "gone"


class StaleVersion(Conflict):
    """The caller changed a request from a copy that is no longer current.

    Services raise it wherever the version came from; the API answers it 412
    `precondition_failed` when the version came from If-Match (api/queue.py
    `versioned`), the console shows the page again with what changed.
    """

    code = "stale_version"


class TooManyRequests(ServiceError):
    status = 429
    code = "rate_limited"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.headers = {"Retry-After": str(retry_after)}


class NotFlagged(Conflict):
    """A safety review of a request the urgent-sign rules did not flag."""

    code = "not_flagged"


class PreconditionFailed(ServiceError):
    status = 412
    code = "precondition_failed"


class PreconditionRequired(ServiceError):
    status = 428
    code = "precondition_required"


# Codes for errors Werkzeug, webargs or Flask-Limiter raise as HTTPException.
HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    410: "gone",
    412: "precondition_failed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    428: "precondition_required",
    429: "rate_limited",
    500: "internal_error",
    503: "service_unavailable",
}

HTTP_MESSAGES = {
    400: _l("The request is malformed."),
    404: _l("There is nothing at this address."),
    405: _l("This method is not allowed here."),
    413: _l("The request body is too large."),
    415: _l("Send the body as application/json or application/x-www-form-urlencoded."),
    422: _l("Some fields are invalid."),
    429: _l("Too many requests; try again later."),
    500: _l("Something went wrong on our side."),
}
# Used instead of Werkzeug's English description when the raiser gave none of its own.
HTTP_DEFAULT_MESSAGES = {
    401: _l("You need to sign in to do this."),
    403: _l("You are not allowed to do this."),
    409: _l("This conflicts with the current state; reload and try again."),
    412: _l("Someone changed this in the meantime; reload and try again."),
    428: _l("This request must say which version it changes."),
    503: _l("The service is unavailable; try again."),
}

# Headers of Werkzeug's own response worth keeping (Allow on 405, Retry-After on 429...).
_KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate")


def error_response(
    status: int,
    code: str,
    message: Any,
    fields: Mapping[str, list[Any]] | None = None,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Response:
    # str() puts lazy messages into the request's language (quote_service.i18n).
    body: dict[str, Any] = {"code": code, "message": str(message)}
    if fields:
        body["fields"] = {
            str(name): [str(m) for m in _flatten(msgs)] for name, msgs in fields.items()
        }
    body.update(extra or {})
    response = jsonify({"error": body})
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def flatten_webargs_messages(messages: Any) -> tuple[FieldErrors, list[Any]]:
    """Turn webargs' `{location: {field: [msg]}}` into field errors and general messages."""
    fields: FieldErrors = {}
    general: list[Any] = []
    if not isinstance(messages, Mapping):
        return fields, [messages]
    for per_location in messages.values():
        if isinstance(per_location, Mapping):
            for field, errors in per_location.items():
                flat = _flatten(errors)
                if field == "_schema":
                    general.extend(flat)
                else:
                    fields.setdefault(str(field), []).extend(flat)
        else:
            general.extend(_flatten(per_location))
    return fields, general


def _flatten(errors: Any) -> list[Any]:
    """The messages of a nested structure, each kept as it is (a str or a lazy string)."""
    if isinstance(errors, Mapping):
        return [msg for value in errors.values() for msg in _flatten(value)]
    if isinstance(errors, list | tuple):
        return [msg for value in errors for msg in _flatten(value)]
    return [errors]


def handle_http_exception(error: HTTPException) -> Response:
    status = error.code or 500
    code = HTTP_CODES.get(status, "error")
    message: Any = HTTP_MESSAGES.get(status)
    if message is None:
        own = error.description and error.description != type(error).description
        message = (error.description if own else HTTP_DEFAULT_MESSAGES.get(status)) or error.name
    fields: FieldErrors = {}
    data = getattr(error, "data", None) or {}
    if "messages" in data:
        fields, general = flatten_webargs_messages(data["messages"])
        if general:
            message = " ".join(str(msg) for msg in general)
    if "message" in data:
        message = data["message"]
    headers = {
        name: value for name, value in error.get_response().headers.items() if name in _KEPT_HEADERS
    }
    headers.update(data.get("headers") or {})
    return error_response(status, code, message, fields, headers)


def handle_service_error(error: ServiceError) -> Response:
    return error_response(
        error.status, error.code, error.message, error.fields, error.headers, error.extra
    )


def handle_database_unavailable(error: DBAPIError) -> Response:
    # Only connection-level failures get here; the statement is not logged
    # because its parameters may hold personal data.
    log.warning("database unavailable: %s", type(error.orig).__name__)
    return error_response(503, "service_unavailable", _l("The database is unavailable; try again."))


def end_session_despite_disconnect(exception: BaseException | None) -> None:
    """Close the request's database session even when its connection died under it.

    Flask-SQLAlchemy's own teardown (which runs after this one) rolls the
    session back; on a connection the server has terminated, that rollback
    raises after the answer was made, and the WSGI server replaces the 201 or
    503 with a bare 500. A connection in that state is discarded, never pooled.
    """
    session = current_app.extensions["sqlalchemy"].session
    try:
        session.remove()
    except DBAPIError as error:
        log.warning(
            "database connection lost while closing a session: %s", type(error.orig).__name__
        )
        session().invalidate()
        session.remove()


def handle_unexpected(error: Exception) -> Response:
    if isinstance(error, HTTPException):
        return handle_http_exception(error)
    # The frames say where; the exception's message may quote what a patient
    # sent (a value in a KeyError, say), so it stays out of the log.
    frames = "".join(traceback.format_tb(error.__traceback__))
    log.error("unhandled %s\n%s", type(error).__name__, frames)
    return error_response(500, "internal_error", HTTP_MESSAGES[500])


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(ServiceError, handle_service_error)
    app.register_error_handler(OperationalError, handle_database_unavailable)
    app.register_error_handler(Exception, handle_unexpected)
    # Registered after Flask-SQLAlchemy's teardown, so it runs before it.
    app.teardown_appcontext(end_session_despite_disconnect)
