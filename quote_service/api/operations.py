"""Liveness and readiness, at the root for load balancers and orchestrators."""

from __future__ import annotations

from typing import Any

import redis
from flask import current_app
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from quote_service.api.parsing import Blueprint
from quote_service.extensions import db

blp = Blueprint("operations", __name__, description="Operations")

# A readiness probe must answer quickly even when a dependency hangs.
PROBE_TIMEOUT_SECONDS = 1.0


@blp.route("/healthz")
@blp.response(200)
def healthz() -> dict[str, str]:
    """The process is alive"""
    return {"status": "ok"}


@blp.route("/readyz")
@blp.response(200)
@blp.alt_response(503, description="A dependency is down; the body names it.")
def readyz() -> tuple[dict[str, Any], int]:
    """The process can serve: database and broker answer"""
    checks = {"database": _database_check()}
    redis_url = current_app.config["REDIS_URL"]
    if redis_url:
        checks["broker"] = _redis_check(redis_url)
    ready = all(state == "ok" for state in checks.values())
    return {"status": "ok" if ready else "unavailable", "checks": checks}, 200 if ready else 503


def _database_check() -> str:
    try:
        db.session.execute(text("SELECT 1"))
        return "ok"
    except SQLAlchemyError:
        db.session.rollback()
        return "down"


def _redis_check(url: str) -> str:
    client = redis.Redis.from_url(
        url, socket_timeout=PROBE_TIMEOUT_SECONDS, socket_connect_timeout=PROBE_TIMEOUT_SECONDS
    )
    try:
        client.ping()
        return "ok"
    except redis.RedisError:
        return "down"
    finally:
        client.close()
