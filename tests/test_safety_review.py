"""Coordinators and urgent flags: the queue, the detail's safety, reviews, statistics."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from quote_service.safety.signs import ruleset
from tests.conftest import Caller
from tests.payloads import valid_body

URL = "/api/v1/quote-requests"
URGENT = "My father's face is drooping since this morning and he cannot speak"
CALM = "Stroke in March, left side weakness."


def post(client: FlaskClient, message: str, email: str) -> str:
    response = client.post(URL, json=valid_body(message=message, email=email))
    assert response.status_code == 201
    return response.get_json()["reference"]


@pytest.fixture
def urgent_ref(client: FlaskClient) -> str:
    return post(client, URGENT, "urgent.patient@example.org")


@pytest.fixture
def calm_ref(client: FlaskClient) -> str:
    return post(client, CALM, "calm.patient@example.org")


def review(client, caller: Caller, reference: str, body, **kwargs):
    return client.post(
        f"{URL}/{reference}/safety-review", json=body, headers=caller.headers, **kwargs
    )


def test_queue_items_carry_urgent_and_filter_on_it(client, coordinator, urgent_ref, calm_ref):
    items = client.get(URL, headers=coordinator.headers).get_json()["items"]
    assert {item["reference"]: item["urgent"] for item in items} == {
        urgent_ref: True,
        calm_ref: False,
    }
    only = client.get(URL, query_string={"urgent": "true"}, headers=coordinator.headers)
    assert [item["reference"] for item in only.get_json()["items"]] == [urgent_ref]
    others = client.get(URL, query_string={"urgent": "false"}, headers=coordinator.headers)
    assert [item["reference"] for item in others.get_json()["items"]] == [calm_ref]
    bad = client.get(URL, query_string={"urgent": "maybe"}, headers=coordinator.headers)
    assert bad.status_code == 422
    assert "urgent" in bad.get_json()["error"]["fields"]


def test_the_detail_names_the_matched_rules_and_their_version(client, coordinator, urgent_ref):
    detail = client.get(f"{URL}/{urgent_ref}", headers=coordinator.headers).get_json()

    safety = detail["safety"]
    assert detail["urgent"] is True and safety["urgent"] is True
    assert safety["rules_version"] == ruleset().version
    ids = {rule["id"] for rule in safety["rules"]}
    assert {"stroke-face", "stroke-speech"} <= ids
    assert all(rule["label"] and rule["category"] == "stroke" for rule in safety["rules"])
    assert safety["verdict"] is None and safety["reviewed_by"] is None
    assert "urgent_flagged" in [event["type"] for event in detail["timeline"]]


def test_a_calm_detail_says_not_urgent(client, coordinator, calm_ref):
    safety = client.get(f"{URL}/{calm_ref}", headers=coordinator.headers).get_json()["safety"]
    assert safety == {
        "urgent": False,
        "rules_version": None,
        "rules": [],
        "verdict": None,
        "reviewed_by": None,
        "reviewed_at": None,
    }


def test_a_review_records_the_verdict_as_an_event(client, coordinator, urgent_ref):
    response = review(client, coordinator, urgent_ref, {"verdict": "confirmed", "note": "Called"})

    assert response.status_code == 200
    body = response.get_json()
    assert body["safety"]["verdict"] == "confirmed"
    assert body["safety"]["reviewed_by"] == f"user:{coordinator.email}"
    assert response.headers["ETag"] == f'"{body["version"]}"'
    detail = client.get(f"{URL}/{urgent_ref}", headers=coordinator.headers).get_json()
    [event] = [e for e in detail["timeline"] if e["type"] == "safety_review"]
    assert event["actor"] == f"user:{coordinator.email}"
    assert event["note"] == "Called"
    assert event["data"] == {"verdict": "confirmed", "previous": None}

    again = review(client, coordinator, urgent_ref, {"verdict": "false_alarm"})
    assert again.get_json()["safety"]["verdict"] == "false_alarm"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "verdict"),
        ({"verdict": "maybe"}, "verdict"),
        ({"verdict": None}, "verdict"),
        ({"verdict": "confirmed", "note": ""}, "note"),
        ({"verdict": "confirmed", "note": "x" * 5001}, "note"),
        ({"verdict": "confirmed", "status": "closed"}, "status"),
        ({"verdict": "confirmed", "version": "one"}, "version"),
    ],
)
def test_bad_review_bodies_are_422(client, coordinator, urgent_ref, body, field):
    response = review(client, coordinator, urgent_ref, body)
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "validation_error"
    assert field in error["fields"]


def test_review_refusals(client, coordinator, urgent_ref, calm_ref):
    not_flagged = review(client, coordinator, calm_ref, {"verdict": "confirmed"})
    assert not_flagged.status_code == 409
    assert not_flagged.get_json()["error"]["code"] == "not_flagged"

    unknown = review(client, coordinator, "QR-ZZZZZZZZ", {"verdict": "confirmed"})
    assert unknown.status_code == 404

    anonymous = client.post(f"{URL}/{urgent_ref}/safety-review", json={"verdict": "confirmed"})
    assert anonymous.status_code == 401

    not_json = client.post(
        f"{URL}/{urgent_ref}/safety-review", data="verdict=confirmed", headers=coordinator.headers
    )
    assert not_json.status_code in (415, 422)

    stale_body = review(client, coordinator, urgent_ref, {"verdict": "confirmed", "version": 99})
    assert stale_body.status_code == 409
    assert stale_body.get_json()["error"]["code"] == "stale_version"
    assert "version" in stale_body.get_json()["error"]["fields"]
    stale_header = client.post(
        f"{URL}/{urgent_ref}/safety-review",
        json={"verdict": "confirmed"},
        headers={**coordinator.headers, "If-Match": '"99"'},
    )
    assert stale_header.status_code == 412
    assert stale_header.get_json()["error"]["code"] == "precondition_failed"
    detail = client.get(f"{URL}/{urgent_ref}", headers=coordinator.headers).get_json()
    assert detail["safety"]["verdict"] is None  # nothing refused changed anything


def test_statistics_count_flagged_confirmed_and_false_alarms(client, coordinator, calm_ref):
    refs = [post(client, URGENT, f"urgent.{n}@example.org") for n in range(3)]
    review(client, coordinator, refs[0], {"verdict": "confirmed"})
    review(client, coordinator, refs[1], {"verdict": "false_alarm"})

    stats = client.get("/api/v1/statistics", headers=coordinator.headers).get_json()
    assert stats["safety"] == {"flagged": 3, "confirmed": 1, "false_alarm": 1, "unreviewed": 1}
