"""SLA in the queue: each item's clock and last activity, `sla=due_soon`, and `sort=sla`."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient

from quote_service.extensions import db
from quote_service.models import Event, utcnow
from tests.conftest import Caller
from tests.test_queue_api import URL, page_through, post, references, stored


def aged(reference: str, share_of_sla: float, app: Flask) -> datetime:
    """Make a request look `share_of_sla` of the SLA old; return its new created_at."""
    hours = app.config["SLA_FIRST_RESPONSE_HOURS"]
    created = utcnow() - timedelta(hours=hours * share_of_sla)
    stored(reference).created_at = created
    db.session.commit()
    return created


def move(client: FlaskClient, coordinator: Caller, reference: str, to: str) -> None:
    response = client.post(
        f"{URL}/{reference}/transitions", json={"to": to}, headers=coordinator.headers
    )
    assert response.status_code == 200, response.get_json()


def item(client: FlaskClient, coordinator: Caller, reference: str) -> dict:
    body = client.get(URL, query_string={"q": reference}, headers=coordinator.headers).get_json()
    [found] = body["items"]
    return found


def test_an_item_carries_its_clock_its_patient_and_its_last_activity(
    client: FlaskClient, app: Flask, app_context: None, coordinator: Caller
):
    reference = post(client, country_of_residence="NL", patient_age=58)
    created = aged(reference, 0.5, app)
    found = item(client, coordinator, reference)
    assert found["country_of_residence"] == "NL" and found["patient_age"] == 58
    due = created + timedelta(hours=app.config["SLA_FIRST_RESPONSE_HOURS"])
    assert datetime.fromisoformat(found["sla_due_at"]) == due
    half = app.config["SLA_FIRST_RESPONSE_HOURS"] * 3600 / 2
    assert half <= found["waiting_seconds"] < half + 60
    [received] = db.session.execute(
        db.select(Event).where(Event.quote_request_id == stored(reference).id)
    ).scalars()
    assert datetime.fromisoformat(found["last_activity_at"]) == received.at

    move(client, coordinator, reference, "rejected")
    db.session.expire_all()
    after = item(client, coordinator, reference)
    # Someone responded: no clock; the request ended: no wait; the move is its last activity.
    assert after["sla_due_at"] is None and after["waiting_seconds"] is None
    assert datetime.fromisoformat(after["last_activity_at"]) > received.at
    detail = client.get(f"{URL}/{reference}", headers=coordinator.headers).get_json()
    assert detail["last_activity_at"] == after["last_activity_at"]
    assert detail["sla_due_at"] is None and detail["country_of_residence"] == "NL"


def test_due_soon_is_the_last_quarter_of_the_sla_before_a_breach(
    client: FlaskClient, app: Flask, app_context: None, coordinator: Caller
):
    early, soon, late, answered = (post(client) for _ in range(4))
    aged(early, 0.5, app)
    aged(soon, 0.8, app)
    aged(late, 1.2, app)
    aged(answered, 0.8, app)
    stored(answered).status = "in_review"
    db.session.commit()
    due_soon = client.get(URL, query_string={"sla": "due_soon"}, headers=coordinator.headers)
    assert references(due_soon) == [soon]
    breached = client.get(URL, query_string={"sla": "breached"}, headers=coordinator.headers)
    assert references(breached) == [late]


def test_sort_sla_puts_the_most_urgent_first_and_pages_each_request_once(
    client: FlaskClient, app: Flask, app_context: None, coordinator: Caller
):
    made = {name: post(client) for name in ("old_open", "new_open", "old_done", "new_done")}
    aged(made["old_open"], 0.9, app)
    aged(made["new_open"], 0.1, app)
    aged(made["old_done"], 2.0, app)
    aged(made["new_done"], 0.2, app)
    for name in ("old_done", "new_done"):
        stored(made[name]).status = "in_review"
    db.session.commit()
    expected = [made[name] for name in ("old_open", "new_open", "old_done", "new_done")]
    everything = client.get(URL, query_string={"sort": "sla"}, headers=coordinator.headers)
    assert references(everything) == expected
    # One at a time: the cursor crosses from the clocked run to the rest.
    assert page_through(client, coordinator.headers, sort="sla", limit=1) == expected


@pytest.mark.parametrize(
    ("name", "value"), [("sla", "late"), ("sort", "urgent"), ("sla", "")], ids=str
)
def test_an_unknown_sla_filter_or_sort_is_named(
    client: FlaskClient, coordinator: Caller, name: str, value: str
):
    response = client.get(URL, query_string={name: value}, headers=coordinator.headers)
    assert response.status_code == 422
    body = response.get_json()["error"]
    assert body["code"] == "validation_error" and name in body["fields"]


def test_a_cursor_of_another_sort_is_refused_by_sort_sla(client: FlaskClient, coordinator: Caller):
    post(client)
    post(client)
    newest = client.get(URL, query_string={"limit": 1}, headers=coordinator.headers).get_json()
    response = client.get(
        URL,
        query_string={"sort": "sla", "cursor": newest["next_cursor"]},
        headers=coordinator.headers,
    )
    assert response.status_code == 422
    assert "cursor" in response.get_json()["error"]["fields"]
