"""The queue's floor: the same keyset page, as one hand-written query with psycopg.

It reads the project's cursors (base64 of `[created_at, id, sort]`), so the
harness asks both for exactly the same page. No authentication, no schema:
only what any implementation of this page has to do.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue

COLUMNS = (
    "q.id, q.reference, q.status, q.version, q.created_at, q.updated_at, q.destination_code,"
    " q.condition_slug, q.treatment_slug, q.preferred_language, q.full_name,"
    " p.id, p.slug, p.name, u.id, u.email, q.country_of_residence, q.patient_age,"
    " (SELECT max(e.at) FROM event e WHERE e.quote_request_id = q.id)"
)
# Statuses with a first-response clock, and the clock's length (the service's default).
AWAITING = ("received", "routed", "unroutable")
OPEN = ("received", "routed", "unroutable", "in_review", "quoted")
SLA = timedelta(hours=24)
FROM = (
    " FROM quote_request q LEFT JOIN provider p ON p.id = q.provider_id"
    " LEFT JOIN user_account u ON u.id = q.assignee_id"
)


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    created_at, row_id, _sort = json.loads(
        base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    )
    return datetime.fromisoformat(created_at), int(row_id)


def encode_cursor(created_at: datetime, row_id: int) -> str:
    raw = json.dumps([created_at.isoformat(), row_id, "newest"]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def page_query(args: dict[str, Any], extra: str | None = None) -> tuple[str, list[Any]]:
    """The SQL and parameters of one page for these query arguments.

    Newest first; with `sort=sla` (first page only), oldest first within the
    run `extra` names (the requests with a clock, or those without).
    """
    where, params = [], []
    if extra:
        where.append(extra)
    statuses = args.get("status") or []
    if statuses:
        # IN, as the ORM writes it: PostgreSQL plans `IN (x)` as `= x`, on the status index.
        where.append(f"q.status IN ({', '.join(['%s'] * len(statuses))})")
        params.extend(statuses)
    else:
        where.append("q.status <> 'spam'")
    for name, column in (("destination", "q.destination_code"), ("condition", "q.condition_slug")):
        if args.get(name):
            where.append(f"{column} = %s")
            params.append(args[name])
    if args.get("cursor"):
        where.append("(q.created_at, q.id) < (%s, %s)")
        params.extend(decode_cursor(args["cursor"]))
    params.append(args["limit"] + 1)
    order = "q.created_at, q.id" if args.get("sort") == "sla" else "q.created_at DESC, q.id DESC"
    query = f"SELECT {COLUMNS}{FROM} WHERE {' AND '.join(where)} ORDER BY {order} LIMIT %s"
    return query, params


def _item(row: tuple[Any, ...]) -> dict[str, Any]:
    return {
        "reference": row[1],
        "status": row[2],
        "version": row[3],
        "created_at": row[4].isoformat(),
        "updated_at": row[5].isoformat(),
        "destination": row[6],
        "condition": row[7],
        "treatment": row[8],
        "preferred_language": row[9],
        "full_name": row[10],
        "provider": {"id": row[11], "slug": row[12], "name": row[13]} if row[11] else None,
        "assignee": {"id": row[14], "email": row[15]} if row[14] else None,
        "country_of_residence": row[16],
        "patient_age": row[17],
        "sla_due_at": (row[4] + SLA).isoformat() if row[2] in AWAITING else None,
        "waiting_seconds": (
            int((datetime.now(UTC) - row[4]).total_seconds()) if row[2] in OPEN else None
        ),
        "last_activity_at": (row[18] or row[5]).isoformat(),
    }


def blueprint(connection: Callable[[], psycopg.Connection]) -> Blueprint:
    floor = Blueprint("floor_queue", __name__)

    @floor.get("/api/v1/quote-requests")
    def page() -> ResponseReturnValue:
        args = {
            "status": request.args.getlist("status"),
            "destination": request.args.get("destination"),
            "condition": request.args.get("condition"),
            "cursor": request.args.get("cursor"),
            "limit": int(request.args.get("limit", 25)),
            "sort": request.args.get("sort"),
        }
        conn = connection()
        if args["sort"] == "sla":
            clocked = "q.status IN ('received', 'routed', 'unroutable')"
            rows = conn.execute(*page_query(args, clocked)).fetchall()
            if len(rows) <= args["limit"]:
                rest = {**args, "limit": args["limit"] - len(rows)}
                rows += conn.execute(*page_query(rest, f"NOT ({clocked})")).fetchall()
        else:
            rows = conn.execute(*page_query(args)).fetchall()
        conn.commit()
        limit = args["limit"]
        next_cursor = (
            encode_cursor(rows[limit - 1][4], rows[limit - 1][0]) if len(rows) > limit else None
        )
        return jsonify({"items": [_item(row) for row in rows[:limit]], "next_cursor": next_cursor})

    return floor
