"""GET /metrics (the API) and the worker's metrics server, read with prometheus-client's parser."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from sqlalchemy import update

from quote_service.config import ConfigError, from_environment
from quote_service.extensions import db
from quote_service.models import Notification, OutboxMessage, utcnow
from quote_service.services import outbox, pipeline
from tests.conftest import base_config, smtp_config
from tests.payloads import valid_body
from tests.routing_fixtures import received_row
from tests.support.polling import wait_until
from tests.support.servers import Server, free_port
from tests.support.smtp import SmtpSink
from tests.test_worker_pipeline import all_outbox_done, running_worker
from tests.test_workflow_api import stored
from worker.observability import MetricsServerStep
from worker.relay import OutboxRelayStep

URL = "/api/v1/quote-requests"
PROJECT_ROOT = Path(__file__).resolve().parent.parent

API_FAMILIES = {
    "quote_service_http_requests": "counter",
    "quote_service_intake_duration_seconds": "histogram",
    "quote_service_outbox_pending_messages": "gauge",
    "quote_service_outbox_oldest_pending_age_seconds": "gauge",
    "quote_service_quote_requests": "gauge",
    "quote_service_emails": "gauge",
    "quote_service_metrics_database_up": "gauge",
    "quote_service_sla_breached_requests": "gauge",
    "quote_service_readiness_check_up": "gauge",
    "quote_service_build_info": "gauge",
}


def parse(text: str) -> list[Sample]:
    """Every sample of a Prometheus text page; the parser refuses malformed text."""
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples]


def scrape(client: FlaskClient) -> list[Sample]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    return parse(response.get_data(as_text=True))


def value(samples: list[Sample], name: str, **labels: str) -> float:
    """The sample's value, 0 when the series does not exist (yet)."""
    matches = [s.value for s in samples if s.name == name and s.labels == labels]
    assert len(matches) <= 1
    return matches[0] if matches else 0.0


def test_the_metrics_text_parses_and_holds_every_family(client: FlaskClient, app: Flask):
    assert client.post(URL, json=valid_body()).status_code == 201
    response = client.get("/metrics")
    families = {
        family.name: family.type
        for family in text_string_to_metric_families(response.get_data(as_text=True))
    }
    assert families.items() >= API_FAMILIES.items()
    assert value(scrape(client), "quote_service_metrics_database_up") == 1


def test_metrics_are_in_the_openapi(client: FlaskClient):
    operation = client.get("/openapi.json").get_json()["paths"]["/metrics"]["get"]
    assert "text/plain" in operation["responses"]["200"]["content"]


def test_a_request_is_counted_by_its_url_rule_and_status_never_its_path(
    client: FlaskClient, app: Flask
):
    created = client.post(URL, json=valid_body(email="label.canary@example.org"))
    reference = created.get_json()["reference"]
    before = scrape(client)

    assert client.get(f"{URL}/{reference}").status_code == 401  # no token
    assert client.get(URL, query_string={"q": "label.canary@example.org"}).status_code == 401
    assert client.get(f"/no-such-page/{reference}").status_code == 404
    after = scrape(client)

    counted = "quote_service_http_requests_total"
    detail = {
        "method": "GET",
        "route": "/api/v1/quote-requests/<string:reference>",
        "status": "401",
    }
    queue = {"method": "GET", "route": "/api/v1/quote-requests", "status": "401"}
    unmatched = {"method": "GET", "route": "unmatched", "status": "404"}
    for labels in (detail, queue, unmatched):
        assert value(after, counted, **labels) == value(before, counted, **labels) + 1
    posted = {"method": "POST", "route": "/api/v1/quote-requests", "status": "201"}
    assert value(after, counted, **posted) >= 1
    labels = {label for sample in after for label in sample.labels.values()}
    assert not [label for label in labels if reference in label or "canary" in label]


def test_the_intake_latency_histogram_counts_each_post(client: FlaskClient, app: Flask):
    before = value(scrape(client), "quote_service_intake_duration_seconds_count")
    client.post(URL, json=valid_body())
    client.post(URL, json={"full_name": "incomplete"})  # a 422 is an answer too
    client.get(URL)  # not the intake
    after = value(scrape(client), "quote_service_intake_duration_seconds_count")
    assert after == before + 2


def test_the_backlog_gauges_reflect_pending_outbox_rows(client: FlaskClient, app: Flask):
    samples = scrape(client)
    assert value(samples, "quote_service_outbox_pending_messages") == 0
    assert value(samples, "quote_service_outbox_oldest_pending_age_seconds") == 0

    with app.app_context():
        old = outbox.enqueue(
            outbox.TOPIC_SEND, {"notification_id": 1}, utcnow() - timedelta(hours=1)
        )
        for number in (2, 3):
            outbox.enqueue(outbox.TOPIC_SEND, {"notification_id": number})
        db.session.commit()
        old_id = old.id
    samples = scrape(client)
    assert value(samples, "quote_service_outbox_pending_messages") == 3
    assert value(samples, "quote_service_outbox_oldest_pending_age_seconds") >= 3600

    with app.app_context():
        outbox.complete(db.session.get_one(OutboxMessage, old_id))
        db.session.commit()
    samples = scrape(client)
    assert value(samples, "quote_service_outbox_pending_messages") == 2
    assert value(samples, "quote_service_outbox_oldest_pending_age_seconds") < 3600


def test_requests_and_emails_by_status_are_read_from_the_database(client: FlaskClient, app: Flask):
    references = [
        client.post(URL, json=valid_body(email=f"status.{n}@example.org")).get_json()["reference"]
        for n in range(2)
    ]
    client.post(URL, json=valid_body(website="https://spam.example"))
    samples = scrape(client)
    requests = "quote_service_quote_requests"
    assert value(samples, requests, status="received") == 2
    assert value(samples, requests, status="spam") == 1
    assert value(samples, requests, status="closed") == 0  # every status, zeros included

    with app.app_context():
        pipeline.process_received(received_row(stored(references[0])).id)
        db.session.execute(
            update(Notification).where(Notification.kind == "acknowledgement").values(status="sent")
        )
        db.session.execute(
            update(Notification).where(Notification.kind == "provider").values(status="failed")
        )
        db.session.commit()
    samples = scrape(client)
    assert value(samples, requests, status="routed") == 1
    assert value(samples, requests, status="received") == 1
    emails = "quote_service_emails"
    assert value(samples, emails, kind="acknowledgement", status="sent") == 1
    assert value(samples, emails, kind="provider", status="failed") == 1
    assert value(samples, emails, kind="provider", status="sent") == 0


def test_without_a_database_the_page_still_answers(make_app: Callable[[dict], Flask]):
    dead = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/gone"
    client = make_app(base_config(dead, DATABASE_CONNECT_TIMEOUT_SECONDS=1)).test_client()
    samples = scrape(client)
    assert value(samples, "quote_service_metrics_database_up") == 0
    assert any(s.name == "quote_service_http_requests_total" for s in samples)


def test_requests_past_their_first_response_sla_are_counted(client: FlaskClient, app: Flask):
    references = [
        client.post(URL, json=valid_body(email=f"sla.{n}@example.org")).get_json()["reference"]
        for n in range(3)
    ]
    assert value(scrape(client), "quote_service_sla_breached_requests") == 0
    late = utcnow() - timedelta(hours=app.config["SLA_FIRST_RESPONSE_HOURS"], minutes=1)
    with app.app_context():
        for reference in references[:2]:
            stored(reference).created_at = late
        # Answered (in review): late, but no longer waiting for a first response.
        stored(references[1]).status = "in_review"
        db.session.commit()
    assert value(scrape(client), "quote_service_sla_breached_requests") == 1


def test_the_readiness_checks_and_the_release_are_exported(
    make_app: Callable[[dict], Flask], postgres: Server, redis_server: Server
):
    import tomllib

    version = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["version"]
    ready = make_app(base_config(postgres.url, REDIS_URL=redis_server.url)).test_client()
    samples = scrape(ready)
    assert value(samples, "quote_service_readiness_check_up", check="database") == 1
    assert value(samples, "quote_service_readiness_check_up", check="broker") == 1
    assert value(samples, "quote_service_build_info", version=version) == 1

    no_broker = f"redis://127.0.0.1:{free_port()}/0"
    broken = make_app(base_config(postgres.url, REDIS_URL=no_broker)).test_client()
    samples = scrape(broken)
    assert value(samples, "quote_service_readiness_check_up", check="database") == 1
    assert value(samples, "quote_service_readiness_check_up", check="broker") == 0


def read_worker_metrics(port: int) -> list[Sample]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return parse(response.read().decode())


def test_the_worker_serves_task_counters_on_its_port(
    make_app: Callable[[dict], Flask],
    postgres: Server,
    redis_server: Server,
    smtp: SmtpSink,
    app: Flask,
):
    with redis.Redis.from_url(redis_server.url) as broker:
        broker.flushdb()
    port = free_port()
    config = base_config(
        postgres.url, REDIS_URL=redis_server.url, WORKER_METRICS_PORT=port, **smtp_config(smtp)
    )
    worker_app = make_app(config)
    worker_app.extensions["celery"].steps["worker"].update({OutboxRelayStep, MetricsServerStep})

    def count(samples: list[Sample], task: str, outcome: str) -> float:
        return value(samples, "quote_service_tasks_total", task=task, outcome=outcome)

    route, send = "quote.route_request", "quote.send_notification"
    # Counters live as long as the process; other tests' workers counted before.
    before = {
        (task, outcome): REGISTRY.get_sample_value(
            "quote_service_tasks_total", {"task": task, "outcome": outcome}
        )
        or 0.0
        for task in (route, send)
        for outcome in ("success", "failure")
    }
    with running_worker(worker_app):
        worker_app.test_client().post(URL, json=valid_body())
        # A message the task cannot take (no outbox id) fails in the worker.
        worker_app.extensions["celery"].send_task(route, args=[])
        assert wait_until(lambda: len(smtp.received) == 2 and all_outbox_done(worker_app))
        assert wait_until(
            lambda: (
                count(read_worker_metrics(port), route, "failure") == before[(route, "failure")] + 1
            )
        )
        samples = read_worker_metrics(port)
        assert count(samples, route, "success") == before[(route, "success")] + 1
        # The routing task sent both emails itself: no email task ran.
        assert count(samples, send, "success") == before[(send, "success")]
        assert count(samples, send, "failure") == before[(send, "failure")]

    with pytest.raises(OSError):  # the server stopped with its worker
        read_worker_metrics(port)


MULTIPROCESS_SCRIPT = """
import sys
from quote_service import create_app

app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": "sqlite://"})
client = app.test_client()
for _ in range(int(sys.argv[1])):
    client.get("/healthz")
if sys.argv[2] == "scrape":
    sys.stdout.write(client.get("/metrics").get_data(as_text=True))
"""


def run_api_process(multiprocess_dir: Path, *args: str) -> str:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(multiprocess_dir), "LOG_LEVEL": "ERROR"}
    done = subprocess.run(
        [sys.executable, "-c", MULTIPROCESS_SCRIPT, *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


def test_with_a_multiprocess_dir_metrics_add_up_every_process(tmp_path: Path):
    """What gunicorn's several workers need: each process counts, any one reports the sum."""
    directory = tmp_path / "prometheus"
    directory.mkdir()
    run_api_process(directory, "2", "quiet")
    text = run_api_process(directory, "1", "scrape")
    samples = parse(text)
    healthz = {"method": "GET", "route": "/healthz", "status": "200"}
    assert value(samples, "quote_service_http_requests_total", **healthz) == 3


@pytest.mark.parametrize(
    ("name", "setting"),
    [
        ("WORKER_METRICS_PORT", "metrics"),
        ("WORKER_METRICS_PORT", "70000"),
        ("PROMETHEUS_MULTIPROC_DIR", "/no/such/directory"),
    ],
)
def test_metrics_settings_are_parsed_strictly(name: str, setting: str, tmp_path: Path):
    with pytest.raises(ConfigError, match=name):
        from_environment({name: setting}, instance_path=tmp_path)


def test_the_worker_metrics_server_is_off_unless_a_port_is_set(tmp_path: Path):
    settings: dict[str, Any] = from_environment({}, instance_path=tmp_path)
    assert settings["WORKER_METRICS_PORT"] is None
    on = from_environment({"WORKER_METRICS_PORT": "9101"}, instance_path=tmp_path)
    assert on["WORKER_METRICS_PORT"] == 9101
