"""Prometheus metrics of the API, served at `GET /metrics`.

Two kinds, chosen for what stays correct when gunicorn runs several processes:

- counted in the process that saw it: HTTP requests by method, route (the URL
  rule, never the raw path, so references and search terms never become
  labels) and status, and the intake latency histogram;
- read from the database at scrape time, so they add up across every API and
  worker process: the outbox backlog, requests by status, emails by kind
  and status, and requests past their first-response SLA. Counters kept
  where an email is sent would only count the one process that sent it;
- probed at scrape time: the readiness checks of `GET /readyz`, one gauge per
  dependency, and the release (`quote_service_build_info{version}`).

With several processes, set `PROMETHEUS_MULTIPROC_DIR` to an empty directory
that each process can write (wiped before the server starts; one per service,
not shared with the worker's): prometheus-client then keeps the counters in
files there and `/metrics` adds up those of every process. Without it, each
process reports only its own counters.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from flask import Flask, Response, current_app, g, request
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector, CollectorRegistry
from sqlalchemy.exc import SQLAlchemyError

from quote_service import readiness
from quote_service.extensions import db
from quote_service.models import (
    NOTIFICATION_KINDS,
    Notification,
    NotificationStatus,
    QuoteRequest,
    RequestStatus,
    utcnow,
)
from quote_service.services import outbox, sla
from quote_service.version import __version__

log = logging.getLogger(__name__)

INTAKE_ENDPOINT = "intake.create_quote_request"
UNMATCHED_ROUTE = "unmatched"

HTTP_REQUESTS = Counter(
    "quote_service_http_requests",
    "HTTP requests answered, by method, route (the URL rule) and status.",
    ["method", "route", "status"],
)
INTAKE_SECONDS = Histogram(
    "quote_service_intake_duration_seconds",
    "Time to answer POST /api/v1/quote-requests, whatever the outcome.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


def init_app(app: Flask) -> None:
    """Count every request; registered first, so its `after_request` sees the final status."""
    app.before_request(_start_timer)
    app.after_request(_count_request)


def _start_timer() -> None:
    g.metrics_started = time.perf_counter()


def _count_request(response: Response) -> Response:
    route = request.url_rule.rule if request.url_rule else UNMATCHED_ROUTE
    HTTP_REQUESTS.labels(request.method, route, str(response.status_code)).inc()
    started = g.get("metrics_started")
    if started is not None and request.endpoint == INTAKE_ENDPOINT and request.method == "POST":
        INTAKE_SECONDS.observe(time.perf_counter() - started)
    return response


class DatabaseCollector(Collector):
    """Gauges computed from the database when scraped; needs an app context."""

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "quote_service_metrics_database_up",
            "1 if the database gauges below could be read at this scrape, else 0.",
        )
        try:
            families = list(_database_families())
        except SQLAlchemyError as error:
            db.session.rollback()
            log.warning("metrics: database gauges unavailable: %s", type(error).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families


def _database_families() -> Iterator[Metric]:
    backlog = outbox.backlog()
    pending = GaugeMetricFamily(
        "quote_service_outbox_pending_messages",
        "Outbox rows whose work has not completed yet (published or not).",
    )
    pending.add_metric([], backlog["pending"])
    yield pending
    oldest = backlog["oldest_created_at"]
    age = GaugeMetricFamily(
        "quote_service_outbox_oldest_pending_age_seconds",
        "Age of the oldest outbox row whose work has not completed (0 when none).",
    )
    age.add_metric([], max((utcnow() - oldest).total_seconds(), 0.0) if oldest else 0.0)
    yield age

    by_status = dict(
        db.session.execute(
            db.select(QuoteRequest.status, db.func.count(QuoteRequest.id)).group_by(
                QuoteRequest.status
            )
        ).all()
    )
    requests = GaugeMetricFamily(
        "quote_service_quote_requests",
        "Quote requests in the database, by status.",
        labels=["status"],
    )
    for status in RequestStatus:
        requests.add_metric([status], by_status.get(status, 0))
    yield requests

    by_kind_status = {
        (kind, status): count
        for kind, status, count in db.session.execute(
            db.select(
                Notification.kind, Notification.status, db.func.count(Notification.id)
            ).group_by(Notification.kind, Notification.status)
        ).all()
    }
    emails = GaugeMetricFamily(
        "quote_service_emails",
        "Emails recorded, by kind and status (sent, failed, ...), counted in the database.",
        labels=["kind", "status"],
    )
    for kind in NOTIFICATION_KINDS:
        for status in NotificationStatus:
            emails.add_metric([kind, status], by_kind_status.get((kind, status), 0))
    yield emails

    breached = GaugeMetricFamily(
        "quote_service_sla_breached_requests",
        "Requests with no first response yet, created more than SLA_FIRST_RESPONSE_HOURS ago.",
    )
    breached.add_metric(
        [],
        db.session.execute(
            db.select(db.func.count(QuoteRequest.id)).where(sla.breached())
        ).scalar_one(),
    )
    yield breached


class ReadinessCollector(Collector):
    """The checks of `GET /readyz` and the release; needs an app context."""

    def collect(self) -> Iterator[Metric]:
        ready = GaugeMetricFamily(
            "quote_service_readiness_check_up",
            "1 if the dependency answered the readiness probe at this scrape, else 0.",
            labels=["check"],
        )
        for check, state in readiness.check(current_app).items():
            ready.add_metric([check], 1 if state == "ok" else 0)
        yield ready
        build = GaugeMetricFamily(
            "quote_service_build_info",
            "Always 1; the label names the running release (pyproject.toml's version).",
            labels=["version"],
        )
        build.add_metric([__version__], 1)
        yield build


def exposition() -> tuple[bytes, str]:
    """The Prometheus text of this process (or of every process) and the database gauges."""
    registry = CollectorRegistry()
    multiprocess_dir = current_app.config["PROMETHEUS_MULTIPROC_DIR"]
    if multiprocess_dir:
        MultiProcessCollector(registry, path=multiprocess_dir)
    else:
        registry.register(_ProcessCollector())
    registry.register(DatabaseCollector())
    registry.register(ReadinessCollector())
    return generate_latest(registry), CONTENT_TYPE_LATEST


class _ProcessCollector(Collector):
    """This process's default registry: our counters and the process and Python metrics."""

    def collect(self) -> Iterator[Metric]:
        return REGISTRY.collect()
