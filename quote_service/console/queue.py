"""The queue page: saved views with counts, filters, search, keyset paging, live updates."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import marshmallow as ma
from flask import render_template, request, url_for
from flask_login import login_required
from werkzeug.datastructures import MultiDict

from quote_service.console import bp
from quote_service.console.auth import me
from quote_service.errors import FieldErrors, InvalidFields, flatten_webargs_messages
from quote_service.models import RequestStatus, utcnow, vocabulary
from quote_service.schemas.queue import QueueQuerySchema
from quote_service.services import catalog, providers, queue, sla, users

OPEN = list(vocabulary.OPEN)
# Saved views: each is a set of the queue API's own filters. A view whose
# filter the queue does not take yet (urgent flags arrive with their own
# feature) is shown, with no count, until it does.
VIEWS: list[tuple[str, str, dict[str, list[str]]]] = [
    ("new", "New", {"status": list(vocabulary.AWAITING_FIRST_RESPONSE), "assignee": ["none"]}),
    ("mine", "Mine", {"status": OPEN, "assignee": ["me"]}),
    ("unassigned", "Unassigned", {"status": OPEN, "assignee": ["none"]}),
    ("unroutable", "Unroutable", {"status": [RequestStatus.UNROUTABLE]}),
    ("past-sla", "Past SLA", {"sla": ["breached"]}),
    ("waiting", "Waiting on clinics", {"waiting_on": ["clinic"]}),
    ("urgent", "Urgent", {"urgent": ["true"], "status": OPEN}),
]
COUNT_CAP = 1000
LIST_FIELDS = {"status"}
PAGE_ARGS = {"view", "cursor"}
DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
DEFAULT_LIMIT = 25


def query_fields() -> set[str]:
    return set(QueueQuerySchema().fields)


def view_params(slug: str | None) -> dict[str, list[str]]:
    for view_slug, _, params in VIEWS:
        if view_slug == slug:
            return {key: list(values) for key, values in params.items()}
    return {}


def effective_params(args: MultiDict[str, str]) -> dict[str, list[str]]:
    """The view's filters, then the URL's own (which replace the view's), blanks dropped."""
    params = view_params(args.get("view"))
    for key in args:
        if key in PAGE_ARGS or key in ("since", "refs"):
            continue
        values = [value.strip() for value in args.getlist(key) if value.strip()]
        if values:
            params[key] = values
        else:
            params.pop(key, None)
    return params


def load_filters(
    params: dict[str, list[str]], cursor: str | None = None
) -> tuple[dict[str, Any] | None, FieldErrors]:
    """The queue API's schema reads the filters, so the console takes exactly what it takes."""
    data: dict[str, Any] = {}
    for key, values in params.items():
        if key in LIST_FIELDS:
            data[key] = values
            continue
        value = values[-1]
        if key in ("created_after", "created_before") and DATE_ONLY.match(value):
            value += "T00:00:00"  # a date input: midnight UTC
        data[key] = value
    data.setdefault("limit", str(DEFAULT_LIMIT))
    if cursor:
        data["cursor"] = cursor
    try:
        return QueueQuerySchema().load(data), {}
    except ma.ValidationError as error:
        fields, general = flatten_webargs_messages({"query": error.messages})
        if general:
            fields.setdefault("form", []).extend(general)
        return None, fields


def view_counts(active: str | None) -> list[dict[str, Any]]:
    known = query_fields()
    counted = []
    loaded = []
    for slug, label, params in VIEWS:
        filters = None
        if set(params) <= known:
            filters, _ = load_filters({k: list(v) for k, v in params.items()})
        counted.append(
            {
                "slug": slug,
                "label": label,
                "count": None,
                "capped": False,
                "available": filters is not None,
                "active": slug == active,
            }
        )
        if filters is not None:
            loaded.append((counted[-1], filters))
    counts = queue.count_many([filters for _, filters in loaded], me().id, COUNT_CAP)
    for (view, _), count in zip(loaded, counts, strict=True):
        view["count"] = count
        view["capped"] = count >= COUNT_CAP
    return counted


def queue_url(params: dict[str, list[str]], **extra: str) -> str:
    pairs = [(key, value) for key, values in params.items() for value in values]
    pairs += [(key, value) for key, value in extra.items() if value]
    query = urlencode(pairs)
    return url_for("console.queue_page") + (f"?{query}" if query else "")


def filter_choices() -> dict[str, Any]:
    return {
        "statuses": tuple(RequestStatus),
        **catalog.names("en"),
        "clinics": providers.names(),
        "users": [u for u in users.list_users() if u.revoked_at is None],
    }


@bp.route("/")
@login_required
def queue_page() -> Any:
    args = request.args
    params = effective_params(args)
    filters, errors = load_filters(params, args.get("cursor"))
    context: dict[str, Any] = {
        "params": params,
        "views": view_counts(args.get("view")),
        "choices": filter_choices(),
        "errors": errors,
        "items": [],
        "next_url": None,
        "first_url": queue_url(params),
        "now": utcnow(),
        "queue_url": queue_url,
    }
    if filters is None:
        return render_template("console/queue.html", **context), 422
    try:
        items, next_cursor = queue.list_requests(filters, me().id)
    except InvalidFields as refusal:  # a cursor that is not one of ours
        context["errors"] = refusal.fields
        return render_template("console/queue.html", **context), 422
    context.update(
        items=items,
        clocks={item.id: sla.clock(item.created_at, item.status) for item in items},
        next_url=queue_url(params, cursor=next_cursor) if next_cursor else None,
        paged=bool(args.get("cursor")),
        live_url=queue_url(
            params,
            since=context["now"].isoformat(),
            refs=",".join(item.reference for item in items),
        ).replace(url_for("console.queue_page"), url_for("console.queue_live"), 1),
        return_to=request.full_path.rstrip("?"),
    )
    return render_template("console/queue.html", **context)


@bp.route("/queue/live")
@login_required
def queue_live() -> Any:
    """Polled by the queue page: how many new requests match, and who is viewing its rows."""
    params = effective_params(request.args)
    try:
        since = datetime.fromisoformat(request.args.get("since", ""))
    except ValueError:
        return render_template("console/error_fragment.html", message="Bad `since`."), 422
    if since.tzinfo is None:
        return render_template("console/error_fragment.html", message="Bad `since`."), 422
    filters, errors = load_filters(params)
    if filters is None:
        return render_template("console/error_fragment.html", message="Bad filters."), 422
    filters["created_after"] = max(since, filters.get("created_after") or since)
    fresh = queue.count_requests(filters, me().id, COUNT_CAP)
    references = [ref for ref in request.args.get("refs", "").split(",") if ref][:100]
    viewers = queue.viewers_of(references)
    return render_template(
        "console/_queue_live.html",
        fresh=fresh,
        capped=fresh >= COUNT_CAP,
        refresh_url=queue_url(params),
        viewers=viewers,
        me=me(),
    )
