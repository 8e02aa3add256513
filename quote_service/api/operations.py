"""Liveness, readiness and metrics, at the root for load balancers, orchestrators and Prometheus."""

from __future__ import annotations

import hmac
from typing import Any

from flask import Response, current_app, request

from quote_service import metrics, readiness
from quote_service.api.parsing import Blueprint
from quote_service.errors import Unauthorized
from quote_service.readiness import (  # noqa: F401 (the probe's parts, as tests name them)
    PROBE_TIMEOUT_SECONDS,
    readiness_engine,
    run_checks,
)
from quote_service.version import __version__

blp = Blueprint("operations", __name__, description="Operations")


@blp.route("/healthz")
@blp.response(200)
def healthz() -> dict[str, str]:
    """The process is alive, and which release it runs"""
    return {"status": "ok", "version": __version__}


@blp.route("/readyz")
@blp.response(200)
@blp.alt_response(503, description="A dependency is down; the body names it.")
def readyz() -> tuple[dict[str, Any], int]:
    """The process can serve: database and broker answer"""
    states = readiness.check(current_app)
    ready = all(state == "ok" for state in states.values())
    return {"status": "ok" if ready else "unavailable", "checks": states}, 200 if ready else 503


@blp.route("/metrics")
@blp.doc(
    responses={
        "200": {
            "description": "Prometheus text exposition format.",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    }
)
def prometheus_metrics() -> Response:
    """Prometheus metrics: requests, intake latency, backlog, requests and emails by status"""
    expected = current_app.config["METRICS_TOKEN"]
    if expected and not _bearer_is(expected):
        raise Unauthorized("Send the metrics token: Authorization: Bearer <METRICS_TOKEN>.")
    body, content_type = metrics.exposition()
    return Response(body, content_type=content_type)


def _bearer_is(expected: str) -> bool:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    # Constant time, so the token cannot be guessed a character at a time.
    return scheme.lower() == "bearer" and hmac.compare_digest(
        token.strip().encode(), expected.encode()
    )
