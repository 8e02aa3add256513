"""The queue as CSV: every request matching the filters, streamed, the export audited.

The file is for counting and planning, not for contacting anyone: it has no
name, email, phone or message text; a reference leads back to the request.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

from flask import Response, request, stream_with_context

from quote_service.extensions import db
from quote_service.models import QuoteRequest, User
from quote_service.services import queue
from quote_service.services.privacy import record_access

CSV_TYPE = "text/csv"
COLUMNS = (
    "reference",
    "status",
    "created_at",
    "updated_at",
    "destination",
    "condition",
    "treatment",
    "preferred_language",
    "country_of_residence",
    "urgent",
    "provider",
    "assignee",
)
# A cell a spreadsheet would read as a formula is written as text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# What a row of the export never says about the filters: the search itself
# (a name or an address) is personal data; that there was one is enough.
NOT_RECORDED = {"limit", "cursor", "format"}


def wanted(filters: dict[str, Any]) -> bool:
    """Whether the caller asked for CSV: `format=csv`, or `Accept` preferring text/csv."""
    if filters.get("format"):
        return filters["format"] == "csv"
    best = request.accept_mimetypes.best_match(["application/json", CSV_TYPE])
    return best == CSV_TYPE


def export(filters: dict[str, Any], user: User, actor: str) -> Response:
    """Record who exported what, then stream the rows; the access log is written first."""
    record_access(actor, user.id, "export_queue", detail=_recorded(filters))
    db.session.commit()
    rows = _lines(queue.each_request(filters, user.id))
    return Response(
        stream_with_context(rows),
        mimetype=CSV_TYPE,
        headers={
            "Content-Disposition": 'attachment; filename="quote-requests.csv"',
            "Cache-Control": "no-store",
        },
    )


def _recorded(filters: dict[str, Any]) -> dict[str, Any]:
    recorded: dict[str, Any] = {}
    for name, value in filters.items():
        if name in NOT_RECORDED or value is None:
            continue
        if name == "q":
            recorded[name] = "(a search)"
        elif isinstance(value, datetime | date):
            recorded[name] = value.isoformat()
        else:
            recorded[name] = value
    return {"filters": recorded, "format": "csv"}


def _lines(requests: Iterator[QuoteRequest]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def line(values: list[Any]) -> str:
        writer.writerow([_cell(value) for value in values])
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    yield line(list(COLUMNS))
    for quote_request in requests:
        yield line(_row(quote_request))


def _row(quote_request: QuoteRequest) -> list[Any]:
    return [
        quote_request.reference,
        quote_request.status,
        quote_request.created_at.isoformat(),
        quote_request.updated_at.isoformat(),
        quote_request.destination_code,
        quote_request.condition_slug,
        quote_request.treatment_slug,
        quote_request.preferred_language,
        quote_request.country_of_residence,
        "true" if quote_request.urgent else "false",
        quote_request.provider.slug if quote_request.provider else "",
        quote_request.assignee.email if quote_request.assignee else "",
    ]


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text
