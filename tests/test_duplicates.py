"""A request submitted again without a key (double click, resubmit) links to the open one."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text

from quote_service.extensions import db
from quote_service.models import Event, OutboxMessage, QuoteRequest, utcnow
from quote_service.services.intake import DUPLICATE_WINDOW, submission_lock_key
from tests.payloads import valid_body
from tests.support.smtp import wait_until

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


def test_a_resubmission_answers_with_the_open_request_and_sends_nothing_new(
    client: FlaskClient, app_context
):
    first = submit(client)
    second = submit(client, message="Sorry, did my first form arrive?")

    assert second == first  # reference, status, created_at and Location
    assert requests_count() == 1
    assert outbox_count() == 1  # so no second acknowledgement
    events = timeline(first["reference"])
    assert [(e.type, e.actor) for e in events] == [
        ("received", "patient"),
        ("duplicate_submission", "patient"),
    ]
    body = valid_body()
    note = events[1].note or ""
    for personal in (body["full_name"], "Peeters", body["email"], "470", "Sorry", "Stroke in"):
        assert personal not in note
    assert stored(first["reference"]).message == body["message"]  # the first is kept as it was


def test_the_email_matches_without_regard_to_case(client: FlaskClient, app_context):
    first = submit(client, email="jan.peeters@example.org")
    second = submit(client, email="JAN.Peeters@Example.ORG")
    assert second["reference"] == first["reference"]
    assert requests_count() == 1


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
    assert (requests_count(), outbox_count()) == (2, 2)


@pytest.mark.parametrize("status", OPEN)
def test_each_open_status_links(client: FlaskClient, app_context, status: str):
    first = submit(client)
    stored(first["reference"]).status = status
    db.session.commit()
    assert submit(client)["reference"] == first["reference"]
    assert requests_count() == 1


@pytest.mark.parametrize("status", NOT_OPEN)
def test_a_request_no_longer_open_does_not_link(client: FlaskClient, app_context, status: str):
    first = submit(client)
    stored(first["reference"]).status = status
    db.session.commit()
    second = submit(client)
    assert second["reference"] != first["reference"]
    assert [e.type for e in timeline(second["reference"])] == ["received"]
    assert [e.type for e in timeline(first["reference"])] == ["received"]


def test_a_request_older_than_24_hours_does_not_link(client: FlaskClient, app_context):
    first = submit(client)
    stored(first["reference"]).created_at = utcnow() - DUPLICATE_WINDOW - timedelta(minutes=1)
    db.session.commit()
    assert submit(client)["reference"] != first["reference"]
    assert requests_count() == 2


def test_a_request_just_inside_24_hours_still_links(client: FlaskClient, app_context):
    first = submit(client)
    stored(first["reference"]).created_at = utcnow() - DUPLICATE_WINDOW + timedelta(minutes=1)
    db.session.commit()
    assert submit(client)["reference"] == first["reference"]


def test_spam_never_links(client: FlaskClient, app_context):
    real = submit(client)
    spam = submit(client, website="http://spam.example")
    spam_again = submit(client, website="http://spam.example")

    assert len({real["reference"], spam["reference"], spam_again["reference"]}) == 3
    assert stored(spam["reference"]).status == "spam"
    assert [e.type for e in timeline(real["reference"])] == ["received"]
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


def test_a_concurrent_double_click_makes_one_request(app: Flask, app_context):
    body = valid_body(email="double.click@example.org")
    lock = submission_lock_key(body["email"], body["condition"], body["destination"])
    results: list[Any] = []
    clients = [app.test_client(), app.test_client()]

    def click(client: FlaskClient) -> None:
        results.append(client.post(URL, json=body))

    # Both POSTs are held at the lock the intake takes, then let go together:
    # without the lock each would find no earlier request and store its own.
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
    assert results[0].get_json()["reference"] == results[1].get_json()["reference"]
    assert (requests_count(), outbox_count()) == (1, 1)
    reference = results[0].get_json()["reference"]
    assert sorted(e.type for e in timeline(reference)) == ["duplicate_submission", "received"]


def test_duplicates_link_on_sqlite_too(sqlite_app: Flask):
    client = sqlite_app.test_client()
    first = client.post(URL, json=valid_body())
    second = client.post(URL, json=valid_body())
    assert first.status_code == second.status_code == 201
    assert second.get_json()["reference"] == first.get_json()["reference"]
    with sqlite_app.app_context():
        assert requests_count() == 1
        assert outbox_count() == 1
