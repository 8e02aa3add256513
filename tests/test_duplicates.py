"""A request submitted again without a key (double click, resubmit, or someone else
typing the same address) is a request of its own, held beside the open one.

Its 201 is its own (reference, created_at): the answer tells nothing about the
earlier request. It keeps what it carried, is not routed or acknowledged, and
both timelines name the other until a coordinator merges or keeps them apart
(tests/test_duplicate_decisions.py).
"""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text

from quote_service.extensions import db
from quote_service.models import Event, Notification, OutboxMessage, QuoteRequest, utcnow
from quote_service.services import pipeline
from quote_service.services.duplicates import DUPLICATE_WINDOW
from quote_service.services.intake import submission_lock_key
from tests.conftest import Caller
from tests.payloads import valid_body
from tests.support.polling import wait_until

URL = "/api/v1/quote-requests"
OPEN = ("received", "routed", "unroutable", "in_review")
NOT_OPEN = ("quoted", "closed", "rejected", "withdrawn", "spam")


def submit(client: FlaskClient, **overrides: Any) -> dict[str, Any]:
    response = client.post(URL, json=valid_body(**overrides))
    assert response.status_code == 201, response.get_json()
    return {**response.get_json(), "location": response.headers["Location"]}


def stored(reference: str) -> QuoteRequest:
    db.session.expire_all()
    return db.session.execute(
        db.select(QuoteRequest).where(QuoteRequest.reference == reference)
    ).scalar_one()


def requests_count() -> int:
    db.session.expire_all()
    return db.session.execute(db.select(db.func.count(QuoteRequest.id))).scalar_one()


def outbox_count() -> int:
    return db.session.execute(db.select(db.func.count(OutboxMessage.id))).scalar_one()


def timeline(reference: str) -> list[Event]:
    return list(
        db.session.execute(
            db.select(Event)
            .where(Event.quote_request_id == stored(reference).id)
            .order_by(Event.id)
        ).scalars()
    )


def outbox_rows_of(reference: str) -> int:
    return db.session.execute(
        db.select(db.func.count(OutboxMessage.id)).where(
            OutboxMessage.topic == "quote_request.received",
            OutboxMessage.payload["quote_request_id"].as_integer() == stored(reference).id,
        )
    ).scalar_one()


def acknowledgements() -> int:
    return db.session.execute(
        db.select(db.func.count(Notification.id)).where(Notification.kind == "acknowledgement")
    ).scalar_one()


def run_pipeline() -> None:
    """What the workers do with every received row, as test_workflow_api does."""
    rows = list(
        db.session.execute(
            db.select(OutboxMessage.id).where(OutboxMessage.topic == "quote_request.received")
        ).scalars()
    )
    for row in rows:
        pipeline.process_received(row)
    db.session.remove()


def test_a_resubmission_answers_with_its_own_reference_and_time(client: FlaskClient, app_context):
    first = submit(client)
    second = submit(client, message="Sorry, did my first form arrive?")

    assert second["reference"] != first["reference"]
    assert second["created_at"] != first["created_at"]
    assert second["location"].endswith("/" + second["reference"])
    assert second["status"] == first["status"] == "received"
    assert set(second) == set(first)  # the same shape: nothing tells the two apart
    assert requests_count() == 2


def test_a_resubmission_keeps_what_it_carried(client: FlaskClient, app_context):
    first = submit(client)
    second = submit(
        client,
        message="Sorry, did my first form arrive? My new number is below.",
        phone="+32 499 99 88 77",
        travel_from="2027-05-03",
        travel_to="2027-05-24",
    )
    newer, older = stored(second["reference"]), stored(first["reference"])
    assert newer.message == "Sorry, did my first form arrive? My new number is below."
    assert newer.phone == "+32499998877"  # normalised as every phone is
    assert (newer.travel_from.isoformat(), newer.travel_to.isoformat()) == (
        "2027-05-03",
        "2027-05-24",
    )
    assert older.message == valid_body()["message"]  # the first is kept as it was
    # Encrypted at rest, as every personal field is.
    with db.engine.connect() as connection:
        raw = connection.execute(
            text("SELECT phone, message FROM quote_request WHERE reference = :r"),
            {"r": second["reference"]},
        ).one()
    assert "499" not in raw.phone and "Sorry" not in raw.message


def test_a_resubmission_is_held_and_both_timelines_name_the_other(client: FlaskClient, app_context):
    first = submit(client)
    second = submit(client, message="Sorry, did my first form arrive?")

    assert outbox_rows_of(first["reference"]) == 1
    assert outbox_rows_of(second["reference"]) == 0  # no routing, no acknowledgement
    assert stored(second["reference"]).possible_duplicate_of_id == stored(first["reference"]).id
    older_events = timeline(first["reference"])
    assert [(e.type, e.actor, e.data) for e in older_events] == [
        ("received", "patient", None),
        ("duplicate_submission", "patient", {"reference": second["reference"]}),
    ]
    newer_events = timeline(second["reference"])
    assert [(e.type, e.data) for e in newer_events] == [
        ("received", None),
        ("possible_duplicate", {"of": first["reference"]}),
    ]
    body = valid_body()
    for event in older_events + newer_events:
        text_of = f"{event.note or ''} {event.data or ''}"
        for personal in (body["full_name"], "Peeters", body["email"], "470", "Sorry", "Stroke"):
            assert personal not in text_of


def test_only_one_acknowledgement_goes_for_a_resubmission(client: FlaskClient, app_context):
    first = submit(client)
    submit(client, message="Sorry, did my first form arrive?")
    run_pipeline()
    assert acknowledgements() == 1
    ack = db.session.execute(db.select(Notification)).scalars().all()
    assert {n.quote_request_id for n in ack if n.kind == "acknowledgement"} == {
        stored(first["reference"]).id
    }
    assert stored(first["reference"]).status in ("routed", "unroutable")


def test_the_coordinator_sees_the_new_details_beside_the_first(
    client: FlaskClient, app_context, coordinator: Caller
):
    first = submit(client)
    second = submit(
        client,
        message="New: my cardiologist says",
        phone="+32 499 99 88 77",
        travel_from="2027-05-03",
        travel_to="2027-05-24",
    )
    newer = client.get(f"{URL}/{second['reference']}", headers=coordinator.headers).get_json()
    assert newer["message"] == "New: my cardiologist says"
    assert newer["phone"] == "+32499998877"
    assert (newer["travel_from"], newer["travel_to"]) == ("2027-05-03", "2027-05-24")
    assert newer["possible_duplicate_of"] == first["reference"]
    assert newer["possible_duplicates"] == [
        {"reference": first["reference"], "created_at": first["created_at"], "status": "received"}
    ]
    older = client.get(f"{URL}/{first['reference']}", headers=coordinator.headers).get_json()
    assert older["possible_duplicate_of"] is None
    assert older["possible_duplicates"] == [
        {"reference": second["reference"], "created_at": second["created_at"], "status": "received"}
    ]


def test_the_email_matches_without_regard_to_case(client: FlaskClient, app_context):
    first = submit(client, email="jan.peeters@example.org")
    second = submit(client, email="JAN.Peeters@Example.ORG")
    assert second["reference"] != first["reference"]
    assert stored(second["reference"]).possible_duplicate_of_id == stored(first["reference"]).id


def test_a_third_submission_is_held_beside_the_first(client: FlaskClient, app_context):
    first = submit(client)
    submit(client)
    third = submit(client)
    assert stored(third["reference"]).possible_duplicate_of_id == stored(first["reference"]).id
    assert (requests_count(), outbox_count()) == (3, 1)


@pytest.mark.parametrize(
    "change",
    [
        {"email": "someone.else@example.org"},
        {"condition": "diabetes-type-1"},
        {"destination": "AG", "condition": "diabetes-type-2"},
    ],
)
def test_another_email_condition_or_destination_is_a_new_request(
    client: FlaskClient, app_context, change: dict[str, str]
):
    first = submit(client)
    second = submit(client, **change)
    assert second["reference"] != first["reference"]
    assert stored(second["reference"]).possible_duplicate_of_id is None
    assert (requests_count(), outbox_count()) == (2, 2)


@pytest.mark.parametrize("status", OPEN)
def test_each_open_status_holds_the_resubmission(client: FlaskClient, app_context, status: str):
    first = submit(client)
    stored(first["reference"]).status = status
    db.session.commit()
    second = submit(client)
    assert stored(second["reference"]).possible_duplicate_of_id == stored(first["reference"]).id
    assert (requests_count(), outbox_count()) == (2, 1)


@pytest.mark.parametrize("status", NOT_OPEN)
def test_a_request_no_longer_open_does_not_link(client: FlaskClient, app_context, status: str):
    first = submit(client)
    stored(first["reference"]).status = status
    db.session.commit()
    second = submit(client)
    assert second["reference"] != first["reference"]
    assert [e.type for e in timeline(second["reference"])] == ["received"]
    assert [e.type for e in timeline(first["reference"])] == ["received"]
    assert outbox_rows_of(second["reference"]) == 1


def test_a_request_older_than_24_hours_does_not_link(client: FlaskClient, app_context):
    first = submit(client)
    stored(first["reference"]).created_at = utcnow() - DUPLICATE_WINDOW - timedelta(minutes=1)
    db.session.commit()
    second = submit(client)
    assert stored(second["reference"]).possible_duplicate_of_id is None
    assert (requests_count(), outbox_count()) == (2, 2)


def test_a_request_just_inside_24_hours_still_holds_it(client: FlaskClient, app_context):
    first = submit(client)
    stored(first["reference"]).created_at = utcnow() - DUPLICATE_WINDOW + timedelta(minutes=1)
    db.session.commit()
    second = submit(client)
    assert second["reference"] != first["reference"]
    assert stored(second["reference"]).possible_duplicate_of_id == stored(first["reference"]).id


def test_spam_is_never_held_as_a_duplicate(client: FlaskClient, app_context):
    real = submit(client)
    spam = submit(client, website="http://spam.example")
    spam_again = submit(client, website="http://spam.example")

    assert len({real["reference"], spam["reference"], spam_again["reference"]}) == 3
    assert stored(spam["reference"]).status == "spam"
    assert [e.type for e in timeline(real["reference"])] == ["received"]
    assert stored(spam["reference"]).possible_duplicate_of_id is None
    assert outbox_count() == 1


def test_a_real_request_after_spam_is_stored(client: FlaskClient, app_context):
    spam = submit(client, website="http://spam.example")
    real = submit(client)
    assert real["reference"] != spam["reference"]
    assert stored(real["reference"]).status == "received"
    assert outbox_count() == 1


def waiting_advisory_locks() -> int:
    with db.engine.connect() as connection:
        return connection.execute(
            text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            )
        ).scalar_one()


def test_a_concurrent_double_click_is_acknowledged_once(app: Flask, app_context):
    body = valid_body(email="double.click@example.org")
    lock = submission_lock_key(body["email"], body["condition"], body["destination"])
    results: list[Any] = []
    clients = [app.test_client(), app.test_client()]

    def click(client: FlaskClient) -> None:
        results.append(client.post(URL, json=body))

    # Both POSTs are held at the lock the intake takes, then let go together:
    # without the lock neither would find the other, and both would be routed
    # and acknowledged.
    with db.engine.connect() as holder:
        holder.execute(text("SELECT pg_advisory_lock(:key)"), {"key": lock})
        threads = [threading.Thread(target=click, args=(c,)) for c in clients]
        try:
            for thread in threads:
                thread.start()
            assert wait_until(lambda: waiting_advisory_locks() == 2, timeout=10)
        finally:
            holder.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": lock})
            holder.commit()
            for thread in threads:
                thread.join(timeout=20)
    assert not any(thread.is_alive() for thread in threads)

    assert [r.status_code for r in results] == [201, 201]
    references = [r.get_json()["reference"] for r in results]
    assert references[0] != references[1]
    assert (requests_count(), outbox_count()) == (2, 1)
    held = [r for r in references if stored(r).possible_duplicate_of_id is not None]
    [first] = [r for r in references if r not in held]
    assert len(held) == 1
    assert sorted(e.type for e in timeline(first)) == ["duplicate_submission", "received"]
    assert sorted(e.type for e in timeline(held[0])) == ["possible_duplicate", "received"]


def test_duplicates_are_held_on_sqlite_too(sqlite_app: Flask):
    client = sqlite_app.test_client()
    first = client.post(URL, json=valid_body())
    second = client.post(URL, json=valid_body())
    assert first.status_code == second.status_code == 201
    assert second.get_json()["reference"] != first.get_json()["reference"]
    with sqlite_app.app_context():
        assert requests_count() == 2
        assert outbox_count() == 1
        newer = stored(second.get_json()["reference"])
        assert newer.possible_duplicate_of_id == stored(first.get_json()["reference"]).id
