"""The coordinators' queue: list, detail, workflow and actions on quote requests.

`requires()` sits above the argument parsing on purpose: a caller without a
valid token gets 401 before any validation message tells it about the API.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from flask import Response, request

from quote_service.api import queue_csv
from quote_service.api.auth import COORDINATOR, actor, current_user, requires
from quote_service.api.parsing import Blueprint
from quote_service.errors import InvalidFields, PreconditionFailed, StaleVersion
from quote_service.models import Event, Notification, QuoteRequest
from quote_service.schemas.queue import (
    AssignmentInSchema,
    CorrectionInSchema,
    EventSchema,
    KeepApartInSchema,
    MergeInSchema,
    NoteInSchema,
    NotificationSchema,
    QueueItemSchema,
    QueuePageSchema,
    QueueQuerySchema,
    ReopenInSchema,
    RequestDetailSchema,
    ResendInSchema,
    RouteInSchema,
    TransitionInSchema,
)
from quote_service.services import corrections, queue, workflow

blp = Blueprint(
    "queue",
    __name__,
    url_prefix="/api/v1",
    description="Coordinators: the queue of quote requests (bearer token)",
)

ITEM = "/quote-requests/<string:reference>"
Headers = dict[str, str]
View = TypeVar("View", bound=Callable[..., Any])

ETAG_HEADER = {
    "ETag": {
        "description": 'The request\'s version, e.g. "3": send it back as If-Match.',
        "schema": {"type": "string"},
    }
}
IF_MATCH = {
    "in": "header",
    "name": "If-Match",
    "required": False,
    "description": 'The ETag you read, e.g. "3"; or send `version` in the body instead.',
    "schema": {"type": "string"},
}


def versioned(conflicts: str | None = None) -> Callable[[View], View]:
    """A change that may name the version it read: its documentation, and its stale answer.

    The version is optional (the contract's body is `{"to", "note"}`); when
    sent, a stale one is refused. The services raise StaleVersion without
    knowing where the version came from; this is the one place that maps it:
    412 `precondition_failed` when it came from If-Match (as HTTP has it), 409
    `stale_version` when it came from `version` in the body. `conflicts`
    documents the view's other 409s: the OpenAPI has one description per status.
    """
    stale = "a stale `version` in the body (`stale_version`)."
    described = f"{conflicts}; or {stale}" if conflicts else stale[0].upper() + stale[1:]

    def decorator(view: View) -> View:
        @wraps(view)
        def answer_stale(*args: Any, **kwargs: Any) -> Any:
            try:
                return view(*args, **kwargs)
            except StaleVersion as error:
                if if_match() is None:
                    raise
                raise PreconditionFailed(error.message) from error

        versioned_view = cast(View, answer_stale)
        for document in (
            blp.doc(parameters=[IF_MATCH]),
            blp.alt_response(409, description=described),
            blp.alt_response(
                412, description="`precondition_failed`: If-Match names a stale version."
            ),
        ):
            versioned_view = document(versioned_view)
        return versioned_view

    return decorator


def etag(quote_request: QuoteRequest) -> Headers:
    return {"ETag": f'"{quote_request.version}"'}


def if_match() -> str | None:
    """The If-Match header, if one was sent (an empty one is none)."""
    return request.headers.get("If-Match") or None


def expected_version(body: dict[str, Any]) -> int | None:
    """The version the caller read: If-Match (ETag) first, else `version` in the body."""
    header = if_match()
    if header is not None:
        value = header.strip().removeprefix("W/").strip('"')
        # ASCII digits only: str.isdigit() also takes "²", which int() refuses.
        if not re.fullmatch(r"[0-9]{1,9}", value):
            raise InvalidFields({"If-Match": ['Send the ETag of the request, e.g. "3".']})
        return int(value)
    return body.get("version")


@blp.route("/quote-requests")
@blp.doc(security=COORDINATOR)
@requires("coordinator")
@blp.arguments(QueueQuerySchema, location="query")
@blp.response(200, QueuePageSchema)
# The same 200 as CSV (`format=csv` or Accept), documented beside the JSON page.
@blp.doc(
    responses={
        200: {"content": {queue_csv.CSV_TYPE: {"schema": {"type": "string", "format": "binary"}}}}
    }
)
def list_quote_requests(filters: dict[str, Any]) -> dict[str, Any] | Response:
    """The queue: filter, search and page through requests (keyset cursor)

    With `Accept: text/csv` or `format=csv`: every matching request as CSV,
    streamed (no name, contact detail or message text in it); the export is
    written to the access log with who made it and its filters.
    """
    if queue_csv.wanted(filters):
        return queue_csv.export(filters, current_user(), actor())
    items, next_cursor = queue.list_requests(filters, current_user().id)
    return {"items": items, "next_cursor": next_cursor}


@blp.route(ITEM)
@blp.doc(security=COORDINATOR)
@requires("coordinator")
@blp.response(200, RequestDetailSchema, headers=ETAG_HEADER)
def get_quote_request(reference: str) -> tuple[queue.RequestDetail, Headers]:
    """One request: its data, routing decision, notifications and timeline"""
    detail = queue.detail(reference, actor(), current_user().id)
    return detail, {"ETag": f'"{detail.version}"'}


@blp.route(ITEM, methods=["PATCH"])
@blp.doc(security=COORDINATOR)
@requires("coordinator")
@blp.arguments(CorrectionInSchema)
@blp.response(200, RequestDetailSchema, headers=ETAG_HEADER)
@versioned("`request_erased`; `request_not_open` (closed, rejected, withdrawn, spam)")
def correct_quote_request(
    body: dict[str, Any], reference: str
) -> tuple[queue.RequestDetail, Headers]:
    """Correct the patient's name, email, phone, language or travel dates

    Only the fields sent change (null clears phone, travel_from or travel_to),
    checked as at intake. A `corrected` event names who changed which fields,
    never the values. After an email correction, the acknowledgement may be
    resent once past the per-address cap.
    """
    version = expected_version(body)
    result = corrections.correct(reference, body, body.get("note"), actor(), version)
    detail = queue.detail(result.reference, actor(), current_user().id)
    return detail, {"ETag": f'"{detail.version}"'}


@blp.route(f"{ITEM}/transitions", methods=["POST"])
@blp.doc(security=COORDINATOR)
@requires("coordinator")
@blp.arguments(TransitionInSchema)
@blp.response(200, QueueItemSchema, headers=ETAG_HEADER)
@versioned("`transition_not_allowed` (the error lists `allowed`)")
def transition(body: dict[str, Any], reference: str) -> tuple[QuoteRequest, Headers]:
    """Move a request through the workflow; closing takes an `outcome`"""
    version = expected_version(body)
    result = workflow.transition(
        reference, body["to"], body.get("note"), actor(), version, outcome=body.get("outcome")
    )
    return result, etag(result)


@blp.route(f"{ITEM}/reopen", methods=["POST"])
@blp.doc(security=COORDINATOR)
@requires("coordinator")
@blp.arguments(ReopenInSchema)
@blp.response(200, QueueItemSchema, headers=ETAG_HEADER)
@versioned(
    "`reopen_too_late` (ended REOPEN_DAYS ago or more); `request_erased`; "
    "`reopen_not_allowed` (not closed or rejected, or merged)"
)
def reopen(body: dict[str, Any], reference: str) -> tuple[QuoteRequest, Headers]:
    """Take a closed or rejected request up again (back to in_review), with a reason"""
    version = expected_version(body)
    result = workflow.reopen(reference, body["reason"], actor(), version)
    return result, etag(result)


@blp.route(f"{ITEM}/assignment", methods=["POST"])
@blp.doc(security=COORDINATOR)
@requires("coordinator")
@blp.arguments(AssignmentInSchema)
@blp.response(200, QueueItemSchema, headers=ETAG_HEADER)
@versioned()
def assign(body: dict[str, Any], reference: str) -> tuple[QuoteRequest, Headers]:
    """Claim (`me`), assign to a user id, or unassign (null)"""
    version = expected_version(body)
    assignee = current_user().id if body["assignee"] == "me" else body["assignee"]
    result = workflow.assign(reference, assignee, body.get("note"), actor(), version)
    return result, etag(result)


@blp.route(f"{ITEM}/notes", methods=["POST"])
@blp.doc(security=COORDINATOR)
@requires("coordinator")
@blp.arguments(NoteInSchema)
@blp.response(201, EventSchema)
def add_note(body: dict[str, Any], reference: str) -> Event:
    """Add a note to the timeline"""
    return workflow.add_note(reference, body["note"], actor())


@blp.route(f"{ITEM}/route", methods=["POST"])
@blp.doc(security=COORDINATOR)
@requires("coordinator")
@blp.arguments(RouteInSchema)
@blp.response(200, QueueItemSchema, headers=ETAG_HEADER)
@versioned(
    "`reroute_not_allowed` (quoted or ended); "
    "`duplicate_undecided` (merge it or keep it apart first)"
)
def reroute(body: dict[str, Any], reference: str) -> tuple[QuoteRequest, Headers]:
    """Route again, or to a provider you choose; the new provider is emailed"""
    version = expected_version(body)
    result = workflow.reroute(reference, body["provider_id"], body.get("note"), actor(), version)
    return result, etag(result)


@blp.route(f"{ITEM}/acknowledgement", methods=["POST"])
@blp.doc(security=COORDINATOR)
@requires("coordinator")
@blp.arguments(ResendInSchema)
@blp.response(201, NotificationSchema)
@blp.alt_response(
    409,
    description="`request_erased`; `request_not_open` (withdrawn, rejected, closed, spam); "
    "`not_acknowledged_yet` (no first acknowledgement yet); or `resend_in_flight`.",
)
def resend_acknowledgement(body: dict[str, Any], reference: str) -> Notification:
    """Send the acknowledgement again, through the same disclaimer guard"""
    return workflow.resend_acknowledgement(reference, body.get("note"), actor())


@blp.route(f"{ITEM}/merge", methods=["POST"])
@blp.doc(security=COORDINATOR)
@requires("coordinator")
@blp.arguments(MergeInSchema)
@blp.response(200, QueueItemSchema, headers=ETAG_HEADER)
@blp.alt_response(
    422,
    description="`merge_into_itself`; `unknown_reference` (no request `into`); or invalid fields.",
)
@versioned(
    "`not_a_duplicate` (not an undecided possible duplicate of `into`); "
    "`request_not_open` (one of the two ended)"
)
def merge(body: dict[str, Any], reference: str) -> tuple[QuoteRequest, Headers]:
    """Merge a possible duplicate into the request it resembles: its details join that one"""
    version = expected_version(body)
    result = workflow.merge(reference, body["into"], body.get("note"), actor(), version)
    return result, etag(result)


@blp.route(f"{ITEM}/keep-apart", methods=["POST"])
@blp.doc(security=COORDINATOR)
@requires("coordinator")
@blp.arguments(KeepApartInSchema)
@blp.response(200, QueueItemSchema, headers=ETAG_HEADER)
@versioned("`not_a_duplicate`; `request_not_open` (it ended meanwhile)")
def keep_apart(body: dict[str, Any], reference: str) -> tuple[QuoteRequest, Headers]:
    """Keep a possible duplicate as a request of its own: it is routed and acknowledged"""
    version = expected_version(body)
    result = workflow.keep_apart(reference, body.get("note"), actor(), version)
    return result, etag(result)
