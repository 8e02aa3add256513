"""PostgreSQL connections terminated under traffic: 201 or 503, never half a request."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass

import psycopg
import pytest
from flask import Flask
from sqlalchemy.engine import make_url

from tests.conftest import base_config
from tests.faults.checks import assert_each_email_arrived_once
from tests.faults.conftest import StartWorker
from tests.faults.state import RequestRows, intake_rows, notifications, pending_outbox
from tests.payloads import valid_body
from tests.support.servers import Server
from tests.support.smtp import SmtpSink

URL = "/api/v1/quote-requests"
REQUESTS = 80
WORKER_REQUESTS = 4
# Time between two rounds of terminations: often enough to hit statements and
# commits in flight, rarely enough that some requests get through.
KILL_INTERVAL_SECONDS = 0.1
# Only this test database's client backends: nobody else's connections die.
TERMINATE = """
    SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))
    FROM pg_stat_activity
    WHERE datname = current_database()
      AND pid <> pg_backend_pid()
      AND backend_type = 'client backend'
"""


@dataclass(frozen=True)
class Outcome:
    status: int
    body: dict


def libpq_url(sqlalchemy_url: str) -> str:
    return make_url(sqlalchemy_url).set(drivername="postgresql").render_as_string(False)


@pytest.mark.timeout(60)
def test_terminated_connections_give_201_or_503_and_never_a_half_written_request(
    postgres: Server, app: Flask, make_app
) -> None:
    api = make_app(base_config(postgres.url))
    client = api.test_client()
    outcomes: list[Outcome] = []
    done = threading.Event()

    def post_in_a_loop() -> None:
        try:
            for index in range(REQUESTS):
                body = valid_body(email=f"pg.{index}@example.org")
                try:
                    response = client.post(URL, json=body)
                except Exception as error:
                    # It escaped the app (from a teardown, say): a WSGI server answers
                    # a bare 500 for it.
                    outcomes.append(Outcome(500, {"escaped": type(error).__name__}))
                    continue
                outcomes.append(Outcome(response.status_code, response.get_json()))
        finally:
            done.set()

    poster = threading.Thread(target=post_in_a_loop, name="poster")
    terminated = 0
    with psycopg.connect(libpq_url(postgres.url), autocommit=True) as killer:
        poster.start()
        while not done.wait(KILL_INTERVAL_SECONDS):
            terminated += killer.execute(TERMINATE).fetchone()[0]
    poster.join(30)
    assert not poster.is_alive()

    assert len(outcomes) == REQUESTS
    statuses = Counter(outcome.status for outcome in outcomes)
    assert set(statuses) <= {201, 503}, statuses
    # The terminations did cut requests off mid-flight, and some got through.
    assert terminated > 0 and statuses[503] > 0 and statuses[201] > 0, (terminated, statuses)
    for outcome in outcomes:
        if outcome.status == 503:
            assert outcome.body["error"]["code"] == "service_unavailable"
    accepted = {o.body["reference"] for o in outcomes if o.status == 201}

    # The pool recovers at once: the next request goes through.
    final = client.post(URL, json=valid_body(email="pg.after@example.org"))
    assert final.status_code == 201
    accepted.add(final.get_json()["reference"])

    # Every 201 is stored with its event and outbox row; and nothing is stored by
    # halves: a request whose commit was cut off (a 503) is absent or complete.
    stored = intake_rows(api)
    assert accepted <= set(stored)
    assert set(stored.values()) == {RequestRows(received_events=1, outbox_rows=1)}


@pytest.mark.timeout(120)
def test_a_worker_whose_connections_were_closed_by_the_server_delivers_each_email_once(
    postgres: Server, app: Flask, broker: str, faulty_smtp: SmtpSink, start_worker: StartWorker
) -> None:
    # The worker takes pooled connections without a ping: those the server
    # closed meanwhile (a restart, an idle timeout) fail their first statement.
    worker = start_worker(broker, concurrency=2)
    client = app.test_client()

    def submit(prefix: str) -> list[str]:
        emails = [f"{prefix}.{index}@example.org" for index in range(WORKER_REQUESTS)]
        for email in emails:
            assert client.post(URL, json=valid_body(email=email)).status_code == 201
        return emails

    def acknowledged(emails: list[str]) -> bool:
        return all(faulty_smtp.to(email) for email in emails) and pending_outbox(app) == 0

    before = submit("pooled")
    worker.wait_for(lambda: acknowledged(before), 60, "the first requests acknowledged")
    with psycopg.connect(libpq_url(postgres.url), autocommit=True) as killer:
        assert killer.execute(TERMINATE).fetchone()[0] > 0  # the worker's pooled ones too
    after = submit("after")
    worker.wait_for(lambda: acknowledged(after), 60, "the requests after the terminations")

    records = notifications(app)
    assert {r.status for r in records} == {"sent"}
    assert_each_email_arrived_once(records, faulty_smtp.received)
    # Their first statements did fail, and the tasks ran again on new connections.
    assert "transient OperationalError" in worker.log_text(), worker.log_tail()
