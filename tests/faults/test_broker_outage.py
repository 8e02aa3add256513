"""Redis dies in the middle of a burst of requests: every 201 is still acknowledged once."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import base_config
from tests.faults.checks import assert_each_email_arrived_once, assert_one_acknowledgement_each
from tests.faults.conftest import StartWorker
from tests.faults.state import notifications, pending_outbox
from tests.payloads import valid_body
from tests.support.servers import RedisBinaryServer, Server, find_redis_server, start_redis_server
from tests.support.smtp import SmtpSink

URL = "/api/v1/quote-requests"
BURST = 40
KILL_AFTER = 15
# Several destinations and conditions, so the burst is routed to several providers.
CASES = (("BE", "stroke"), ("AG", "stroke"), ("BE", "diabetes-type-2"))


@pytest.fixture
def killable_broker() -> Iterator[RedisBinaryServer]:
    """A throwaway redis-server of this test's own, which it may kill and restart."""
    if find_redis_server() is None:
        pytest.skip(
            "redis-server is not installed: this test must kill and restart a Redis of its "
            "own; `sudo apt-get install redis-server` enables it"
        )
    server = start_redis_server()
    yield server
    server.stop()


def post_request(client: FlaskClient, index: int) -> tuple[str, str]:
    """POST one request with an address of its own; return the address and its reference."""
    email = f"burst.{index}@example.org"
    destination, condition = CASES[index % len(CASES)]
    response = client.post(
        URL, json=valid_body(email=email, destination=destination, condition=condition)
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    return email, response.get_json()["reference"]


@pytest.mark.timeout(120)
def test_a_redis_outage_mid_burst_loses_no_request_and_acknowledges_each_once(
    postgres: Server,
    app: Flask,
    make_app,
    killable_broker: RedisBinaryServer,
    faulty_smtp: SmtpSink,
    start_worker: StartWorker,
) -> None:
    api = make_app(base_config(postgres.url, REDIS_URL=killable_broker.url))
    worker = start_worker(killable_broker.url, concurrency=2)
    client = api.test_client()

    references = dict(post_request(client, index) for index in range(KILL_AFTER))
    # Kill Redis once the worker is busy: the messages waiting in Redis are lost
    # with it, and the worker's running late-ack tasks are cut off.
    worker.wait_for(lambda: len(faulty_smtp.received) >= 1, 30, "the first email")
    killable_broker.kill()
    delivered_before_outage = len(faulty_smtp.received)

    # The POST never waits on the broker: the rest of the burst is accepted too.
    references.update(post_request(client, index) for index in range(KILL_AFTER, BURST))
    assert pending_outbox(api) > 0

    killable_broker.restart()
    worker.wait_for(
        lambda: all(faulty_smtp.to(email) for email in references) and pending_outbox(api) == 0,
        90,
        "an acknowledgement for every request and a drained outbox",
    )

    assert delivered_before_outage < 2 * BURST  # the outage did cut into the work
    records = notifications(api)
    # Each request was routed once: an acknowledgement and one provider email (or alert).
    assert Counter(r.reference for r in records) == {
        reference: 2 for reference in references.values()
    }
    assert Counter(r.kind for r in records)["acknowledgement"] == BURST
    assert_one_acknowledgement_each(references, records, faulty_smtp.received)
    assert_each_email_arrived_once(records, faulty_smtp.received)
    # Running tasks are not cancelled when the broker goes (see config.py), so a
    # broker outage alone never re-sends: exactly one copy of every message.
    copies = Counter(str(message.message["Message-ID"]) for message in faulty_smtp.received)
    assert set(copies.values()) == {1}, copies
