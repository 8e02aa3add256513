"""Rate limits per client address, and the daily cap of acknowledgements per recipient."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import redis
from flask import Flask

from quote_service.extensions import db
from quote_service.models import Event, Notification
from quote_service.services import pipeline
from tests.conftest import base_config
from tests.payloads import minimal_body
from tests.routing_fixtures import received_row, submit
from tests.support.servers import Server, free_port

URL = "/api/v1/quote-requests"


@pytest.fixture
def limited_app(postgres: Server, redis_server: Server, app, make_app) -> Callable[..., Flask]:
    with redis.Redis.from_url(redis_server.url) as client:
        client.flushdb()

    def build(**overrides: Any) -> Flask:
        config = {"REDIS_URL": redis_server.url, "RATE_LIMIT_INTAKE": "3/minute", **overrides}
        return make_app(base_config(postgres.url, **config))

    return build


def test_the_fourth_request_in_a_minute_is_429_with_retry_after(limited_app):
    client = limited_app().test_client()
    statuses = [client.post(URL, json=minimal_body()).status_code for _ in range(4)]
    assert statuses == [201, 201, 201, 429]
    refused = client.post(URL, json=minimal_body())
    assert refused.status_code == 429
    assert refused.get_json()["error"]["code"] == "rate_limited"
    assert 0 < int(refused.headers["Retry-After"]) <= 60


def test_the_limit_counts_per_client_address_behind_a_trusted_proxy(limited_app):
    client = limited_app(TRUSTED_PROXY_COUNT=1).test_client()
    for _ in range(3):
        assert (
            client.post(
                URL, json=minimal_body(), headers={"X-Forwarded-For": "203.0.113.7"}
            ).status_code
            == 201
        )
    assert (
        client.post(
            URL, json=minimal_body(), headers={"X-Forwarded-For": "203.0.113.7"}
        ).status_code
        == 429
    )
    other = client.post(URL, json=minimal_body(), headers={"X-Forwarded-For": "203.0.113.8"})
    assert other.status_code == 201


def test_without_trusted_proxies_a_forged_forwarded_for_changes_nothing(limited_app):
    client = limited_app(TRUSTED_PROXY_COUNT=0).test_client()
    statuses = [
        client.post(
            URL, json=minimal_body(), headers={"X-Forwarded-For": f"198.51.100.{n}"}
        ).status_code
        for n in range(4)
    ]
    assert statuses == [201, 201, 201, 429]


def test_refused_submissions_do_not_use_up_the_limit(limited_app):
    client = limited_app(RATE_LIMIT_INTAKE="3/minute").test_client()
    refused = [client.post(URL, json=minimal_body(email="not-an-address")) for _ in range(12)]
    assert {r.status_code for r in refused} == {422}
    assert {r.get_json()["error"]["code"] for r in refused} == {"validation_error"}
    accepted = client.post(URL, json=minimal_body())
    assert accepted.status_code == 201
    assert accepted.get_json()["reference"].startswith("QR-")


def test_accepted_submissions_beyond_the_limit_are_429_whatever_came_between(limited_app):
    client = limited_app(RATE_LIMIT_INTAKE="2/minute").test_client()
    assert client.post(URL, json=minimal_body()).status_code == 201
    assert client.post(URL, json={}).status_code == 422
    assert client.post(URL, json=minimal_body()).status_code == 201
    refused = client.post(URL, json=minimal_body())
    assert refused.status_code == 429
    assert refused.get_json()["error"]["code"] == "rate_limited"
    assert 0 < int(refused.headers["Retry-After"]) <= 60


def test_attempts_beyond_the_looser_cap_are_429_even_when_invalid(limited_app):
    client = limited_app(RATE_LIMIT_INTAKE="3/minute", RATE_LIMIT_INTAKE_ATTEMPTS="5/minute")
    client = client.test_client()
    statuses = [client.post(URL, json={}).status_code for _ in range(6)]
    assert statuses == [422] * 5 + [429]
    refused = client.post(URL, json={})
    assert refused.get_json()["error"]["code"] == "rate_limited"
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    # A valid body is refused too: the cap counts every attempt from the address.
    assert client.post(URL, json=minimal_body()).status_code == 429


def test_the_attempts_cap_is_shared_by_the_api_and_the_hosted_form(limited_app):
    client = limited_app(RATE_LIMIT_INTAKE_ATTEMPTS="2/minute").test_client()
    assert client.post("/form/en", data={"email": "x@"}).status_code == 422
    assert client.post(URL, json={}).status_code == 422
    assert client.post("/form/en", data={"email": "x@"}).status_code == 429
    refused = client.post(URL, json=minimal_body())
    assert refused.status_code == 429
    assert refused.get_json()["error"]["code"] == "rate_limited"


def test_the_attempts_cap_counts_per_client_address(limited_app):
    client = limited_app(TRUSTED_PROXY_COUNT=1, RATE_LIMIT_INTAKE_ATTEMPTS="2/minute")
    client = client.test_client()
    first = {"X-Forwarded-For": "203.0.113.7"}
    assert [client.post(URL, json={}, headers=first).status_code for _ in range(3)] == [
        422,
        422,
        429,
    ]
    other = client.post(URL, json=minimal_body(), headers={"X-Forwarded-For": "203.0.113.8"})
    assert other.status_code == 201


def test_with_the_limiter_redis_down_the_intake_keeps_answering(postgres: Server, app, make_app):
    dead = f"redis://127.0.0.1:{free_port()}/0"
    client = make_app(
        base_config(postgres.url, REDIS_URL=dead, RATE_LIMIT_INTAKE="2/minute")
    ).test_client()
    statuses = [client.post(URL, json=minimal_body()).status_code for _ in range(3)]
    # Requests are answered; the in-memory fallback still limits per process.
    assert statuses[:2] == [201, 201]
    assert statuses[2] in (201, 429)


def test_acknowledgements_to_one_address_are_capped_per_day(app: Flask, make_app, postgres):
    capped = make_app(base_config(postgres.url, ACKNOWLEDGEMENTS_PER_RECIPIENT_PER_DAY=2))
    with capped.app_context():
        requests = [
            submit(email="victim@example.org", destination=destination, condition=condition)
            for destination, condition in [
                ("BE", "stroke"),
                ("BE", "diabetes-type-1"),
                ("AG", "diabetes-type-2"),
            ]
        ]
        for request in requests:
            pipeline.process_received(received_row(request).id)
        acks = (
            db.session.execute(
                db.select(Notification)
                .where(Notification.kind == "acknowledgement")
                .order_by(Notification.id)
            )
            .scalars()
            .all()
        )
        assert [a.status for a in acks] == ["pending", "pending", "suppressed"]
        assert "daily cap" in acks[-1].last_error
        events = (
            db.session.execute(
                db.select(Event.type).where(Event.quote_request_id == requests[-1].id)
            )
            .scalars()
            .all()
        )
        assert "acknowledgement_suppressed" in events
        db.session.remove()
