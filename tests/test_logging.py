"""JSON log lines, and one request id followed from the API through the worker's tasks."""

from __future__ import annotations

import io
import json
import logging
import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from quote_service import logging_setup
from quote_service.config import ConfigError, from_environment
from quote_service.extensions import db
from quote_service.models import OutboxMessage
from quote_service.services.outbox import relay_once
from tests.conftest import base_config
from tests.payloads import valid_body
from tests.support.polling import wait_until
from tests.support.servers import Server
from tests.support.smtp import SmtpSink
from tests.test_worker_pipeline import all_outbox_done, pipeline_app, running_worker

URL = "/api/v1/quote-requests"
GENERATED_ID = re.compile(r"[0-9a-f]{32}")
SMTP_SERVER_LOGGER = "mail.log"


class LogLines:
    """JSON lines written by the app's own handler and formatter into memory."""

    def __init__(self) -> None:
        self.stream = io.StringIO()

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def all(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text.splitlines()]

    def ours(self) -> str:
        """The lines of the service, without those of the test's SMTP server (aiosmtpd),
        which in production is another machine with its own logs."""
        return "\n".join(
            json.dumps(line) for line in self.all() if line["logger"] != SMTP_SERVER_LOGGER
        )

    def where(self, **fields: Any) -> list[dict[str, Any]]:
        return [line for line in self.all() if all(line.get(k) == v for k, v in fields.items())]


@pytest.fixture
def log_lines() -> Iterator[LogLines]:
    lines = LogLines()
    handler = logging_setup.make_handler("json", lines.stream)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield lines
    root.removeHandler(handler)
    root.setLevel(level)


def canary_body() -> tuple[dict[str, Any], str, str]:
    """A request whose name and email appear nowhere else, to look for in the logs."""
    tag = uuid.uuid4().hex[:10]
    name, email = f"Canaryname Zq{tag}", f"canary.{tag}@example.org"
    return valid_body(full_name=name, email=email), name, email


def test_lines_are_json_with_the_named_fields(client: FlaskClient, app: Flask, log_lines):
    client.get("/healthz", headers={"X-Request-ID": "probe-1"})
    [line] = log_lines.where(logger="quote_service.requests")
    assert {"time", "level", "logger", "message", "request_id"} <= line.keys()
    assert line["level"] == "INFO"
    assert line["request_id"] == "probe-1"
    assert line["message"] == "GET /healthz 200"


def test_a_sane_request_id_is_taken_and_returned(client: FlaskClient, app: Flask, log_lines):
    body, _, _ = canary_body()
    response = client.post(URL, json=body, headers={"X-Request-ID": "form-7.Ab_c-9"})
    assert response.status_code == 201
    assert response.headers["X-Request-ID"] == "form-7.Ab_c-9"
    assert log_lines.where(logger="quote_service.requests", request_id="form-7.Ab_c-9")
    with app.app_context():
        [row] = db.session.execute(db.select(OutboxMessage)).scalars()
        assert row.payload["request_id"] == "form-7.Ab_c-9"
        db.session.remove()


@pytest.mark.parametrize("sent", [None, "has space", "x" * 65, "semi;colon", 'quo"te', ""])
def test_a_missing_or_odd_request_id_is_replaced_by_a_new_one(
    client: FlaskClient, app: Flask, sent: str | None
):
    headers = {} if sent is None else {"X-Request-ID": sent}
    first = client.get("/healthz", headers=headers).headers["X-Request-ID"]
    second = client.get("/healthz", headers=headers).headers["X-Request-ID"]
    assert GENERATED_ID.fullmatch(first) and GENERATED_ID.fullmatch(second)
    assert first != second


def test_the_relay_publishes_the_request_id_as_a_message_header(client: FlaskClient, app: Flask):
    client.post(URL, json=valid_body(), headers={"X-Request-ID": "relay-check"})
    published: list[tuple[str, list[int], list[str | None]]] = []
    with app.app_context():
        relay_once(
            publish=lambda task, row_ids, connection, request_ids: published.append(
                (task, row_ids, request_ids)
            )
        )
        db.session.remove()
    assert [(task, request_ids) for task, _, request_ids in published] == [
        ("quote.route_request", ["relay-check"])
    ]


def test_no_line_carries_the_patients_name_or_email(client: FlaskClient, app: Flask, log_lines):
    body, name, email = canary_body()
    assert client.post(URL, json=body).status_code == 201
    client.get(URL, query_string={"q": email})  # a search by email, refused without a token
    assert log_lines.all(), "the requests were logged"
    assert name not in log_lines.text
    assert email not in log_lines.text


@pytest.fixture
def worker_app(
    postgres: Server,
    redis_server: Server,
    smtp: SmtpSink,
    make_app: Callable[[dict[str, Any]], Flask],
    app: Flask,
) -> Iterator[Flask]:
    with redis.Redis.from_url(redis_server.url) as client:
        client.flushdb()
    worker_app = pipeline_app(make_app, postgres.url, redis_server.url, smtp)
    with running_worker(worker_app):
        yield worker_app


def test_one_request_id_follows_the_post_through_the_workers_tasks(
    worker_app: Flask, smtp: SmtpSink, log_lines: LogLines
):
    body, name, email = canary_body()
    response = worker_app.test_client().post(URL, json=body)
    assert response.status_code == 201
    request_id = response.headers["X-Request-ID"]
    assert GENERATED_ID.fullmatch(request_id)
    assert wait_until(lambda: len(smtp.received) == 2 and all_outbox_done(worker_app))

    [api_line] = log_lines.where(logger="quote_service.requests", message=f"POST {URL} 201")
    assert api_line["request_id"] == request_id
    # The route task logs under it, the emails it queued and sent itself included.
    reference = response.json["reference"]
    # A task logs its end just after its commit: wait for both sends' lines.
    assert wait_until(
        lambda: (
            log_lines.where(message=f"sent acknowledgement for {reference}")
            and log_lines.where(message=f"sent provider for {reference}")
        )
    )
    route_lines = log_lines.where(task_name="quote.route_request")
    assert {line["request_id"] for line in route_lines} == {request_id}
    [ack_line] = log_lines.where(message=f"sent acknowledgement for {reference}")
    [provider_line] = log_lines.where(message=f"sent provider for {reference}")
    assert ack_line["task_name"] == provider_line["task_name"] == "quote.route_request"
    assert ack_line["request_id"] == provider_line["request_id"] == request_id
    with worker_app.app_context():
        payloads = db.session.execute(db.select(OutboxMessage.payload)).scalars().all()
        db.session.remove()
    assert len(payloads) == 3
    assert {payload["request_id"] for payload in payloads} == {request_id}
    # Celery did not replace the app's logging when the worker started.
    assert logging_setup.HANDLER_NAME in [h.get_name() for h in logging.getLogger().handlers]

    assert log_lines.where(logger=SMTP_SERVER_LOGGER), "the canary reached the SMTP server"
    assert name not in log_lines.ours()
    assert email not in log_lines.ours()


def test_a_task_without_a_request_id_logs_under_its_own_task_id(
    worker_app: Flask, log_lines: LogLines
):
    result = worker_app.extensions["celery"].send_task("quote.route_request", args=[999999])
    assert wait_until(lambda: bool(log_lines.where(task_id=result.id)))
    assert {line["request_id"] for line in log_lines.where(task_id=result.id)} == {result.id}


def test_text_format_is_for_humans(make_app, capsys: pytest.CaptureFixture[str]):
    app = make_app(base_config("sqlite://", LOG_FORMAT="text"))
    try:
        app.test_client().get("/healthz", headers={"X-Request-ID": "human-1"})
        assert "INFO quote_service.requests [human-1] GET /healthz 200" in capsys.readouterr().err
    finally:
        logging_setup.configure_logging("INFO", "json")


@pytest.mark.parametrize(("name", "setting"), [("LOG_LEVEL", "loud"), ("LOG_FORMAT", "xml")])
def test_log_settings_are_parsed_strictly(name: str, setting: str, tmp_path):
    with pytest.raises(ConfigError, match=name):
        from_environment({name: setting}, instance_path=tmp_path)


def test_log_settings_default_to_info_and_json(tmp_path):
    assert from_environment({}, instance_path=tmp_path)["LOG_LEVEL"] == "INFO"
    assert from_environment({}, instance_path=tmp_path)["LOG_FORMAT"] == "json"
    assert from_environment({"LOG_LEVEL": "debug"}, instance_path=tmp_path)["LOG_LEVEL"] == "DEBUG"
