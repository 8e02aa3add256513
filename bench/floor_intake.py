"""The intake's floor: the thinnest Flask app that does the same job.

`POST /api/v1/quote-requests` parses the same JSON and does one INSERT and
COMMIT with psycopg; `POST /e2e/quote-requests` does the same and then hands
the new row's id to the floor worker (`bench.floor_tasks`), which sends a bare
acknowledgement. `GET /api/v1/quote-requests` is the queue's floor
(`bench.floor_queue`). Served by `gunicorn "bench.floor_intake:create_app()"`
with the project's gunicorn settings.
"""

from __future__ import annotations

import json
import os
from typing import Any

import psycopg
from flask import Flask, Response, jsonify, request

from bench import floor_queue
from bench.database import FLOOR_TABLE, libpq_url
from bench.floor_tasks import ACK, QUEUE, celery

INSERT = (
    f"INSERT INTO {FLOOR_TABLE} (full_name, email, country_of_residence, condition,"
    " destination, payload) VALUES (%s, %s, %s, %s, %s, %s) RETURNING id, created_at"
)

# One connection per gunicorn worker (a sync worker serves one request at a time).
_connection: psycopg.Connection | None = None


def connection() -> psycopg.Connection:
    global _connection
    if _connection is None or _connection.closed:
        _connection = psycopg.connect(libpq_url(os.environ["DATABASE_URL"]))
    return _connection


def _store(data: dict[str, Any]) -> tuple[int, Any]:
    conn = connection()
    row = conn.execute(
        INSERT,
        (
            data["full_name"],
            data["email"],
            data["country_of_residence"],
            data["condition"],
            data["destination"],
            json.dumps(data),
        ),
    ).fetchone()
    conn.commit()
    assert row is not None
    return row[0], row[1]


def _created(row_id: int, created_at: Any) -> tuple[Response, int]:
    return jsonify(
        {"reference": f"F-{row_id}", "status": "received", "created_at": created_at.isoformat()}
    ), 201


def create_app() -> Flask:
    app = Flask(__name__)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/api/v1/quote-requests")
    def intake() -> tuple[Response, int]:
        return _created(*_store(request.get_json()))

    @app.post("/e2e/quote-requests")
    def intake_and_acknowledge() -> tuple[Response, int]:
        row_id, created_at = _store(request.get_json())
        celery.send_task(ACK, args=[row_id], queue=QUEUE)
        return _created(row_id, created_at)

    app.register_blueprint(floor_queue.blueprint(connection))
    return app
