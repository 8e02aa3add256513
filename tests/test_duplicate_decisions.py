"""A coordinator merges a possible duplicate into the request it resembles, or keeps it apart."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from quote_service.extensions import db
from quote_service.models import Event, Notification, OutboxMessage, QuoteRequest
from quote_service.services import pipeline
from quote_service.services.users import revoke_user
from tests.conftest import Caller
from tests.payloads import valid_body

URL = "/api/v1/quote-requests"
NEW_DETAILS = {
    "message": "Sorry, did my first form arrive? My cardiologist wrote a letter.",
    "phone": "+32 499 99 88 77",
    "travel_from": "2027-05-03",
    "travel_to": "2027-05-24",
}


def submit(client: FlaskClient, **overrides: Any) -> str:
    response = client.post(URL, json=valid_body(**overrides))
    assert response.status_code == 201, response.get_json()
    return response.get_json()["reference"]


def pair(client: FlaskClient) -> tuple[str, str]:
    """The first request and a resubmission with new details, held beside it."""
    return submit(client), submit(client, **NEW_DETAILS)


def stored(reference: str) -> QuoteRequest:
    db.session.expire_all()
    return db.session.execute(
        db.select(QuoteRequest).where(QuoteRequest.reference == reference)
    ).scalar_one()


def detail(client: FlaskClient, caller: Caller, reference: str) -> dict[str, Any]:
    response = client.get(f"{URL}/{reference}", headers=caller.headers)
    assert response.status_code == 200
    return response.get_json()


def merge(client: FlaskClient, caller: Caller, reference: str, **body: Any):
    return client.post(f"{URL}/{reference}/merge", json=body, headers=caller.headers)


def keep_apart(client: FlaskClient, caller: Caller, reference: str, **body: Any):
    return client.post(f"{URL}/{reference}/keep-apart", json=body, headers=caller.headers)


def run_pipeline() -> None:
    rows = list(
        db.session.execute(
            db.select(OutboxMessage.id).where(OutboxMessage.topic == "quote_request.received")
        ).scalars()
    )
    for row in rows:
        pipeline.process_received(row)
    db.session.remove()


def acknowledged(reference: str) -> int:
    return db.session.execute(
        db.select(db.func.count(Notification.id)).where(
            Notification.kind == "acknowledgement",
            Notification.quote_request_id == stored(reference).id,
        )
    ).scalar_one()


def error(response) -> tuple[int, str]:
    return response.status_code, response.get_json()["error"]["code"]


def test_a_merge_adds_the_newer_details_to_the_older_and_closes_the_newer(
    client: FlaskClient, app_context, coordinator: Caller
):
    older, newer = pair(client)
    version = detail(client, coordinator, older)["version"]

    response = merge(client, coordinator, newer, into=older, note="Same patient")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["status"] == "closed"
    assert response.headers["ETag"] == f'"{response.get_json()["version"]}"'

    kept = detail(client, coordinator, older)
    assert kept["phone"] == "+32499998877"
    assert (kept["travel_from"], kept["travel_to"]) == ("2027-05-03", "2027-05-24")
    # Both messages stay: the first one is not overwritten.
    assert kept["message"].startswith(valid_body()["message"])
    assert kept["message"].endswith(NEW_DETAILS["message"])
    assert kept["version"] == version + 1
    assert kept["possible_duplicates"] == []
    [event] = [e for e in kept["timeline"] if e["type"] == "merged"]
    assert event["actor"] == f"user:{coordinator.email}"
    assert event["data"] == {
        "from": newer,
        "fields": ["phone", "travel_from", "travel_to", "message"],
    }
    assert "499" not in str(event["data"])  # names the fields, not their values

    closed = detail(client, coordinator, newer)
    assert closed["status"] == "closed"
    assert closed["merged_into"] == older
    assert closed["possible_duplicate_of"] is None
    assert closed["possible_duplicates"] == []
    assert [e["data"] for e in closed["timeline"] if e["type"] == "merged"] == [
        {
            "into": older,
            "fields": ["phone", "travel_from", "travel_to", "message"],
            "previous": "received",
        }
    ]

    run_pipeline()
    assert (acknowledged(older), acknowledged(newer)) == (1, 0)


def test_keep_apart_routes_and_acknowledges_the_newer(
    client: FlaskClient, app_context, coordinator: Caller
):
    older, newer = pair(client)
    run_pipeline()
    assert (acknowledged(older), acknowledged(newer)) == (1, 0)
    assert stored(newer).status == "received"

    response = keep_apart(client, coordinator, newer, note="Her sister, same address")
    assert response.status_code == 200, response.get_json()
    run_pipeline()

    assert stored(newer).status in ("routed", "unroutable")
    assert (acknowledged(older), acknowledged(newer)) == (1, 1)
    apart = detail(client, coordinator, newer)
    assert apart["possible_duplicate_of"] is None
    assert apart["merged_into"] is None
    assert apart["possible_duplicates"] == []
    assert apart["message"] == NEW_DETAILS["message"]
    for reference, data in ((newer, {"of": older}), (older, {"reference": newer})):
        events = db.session.execute(
            db.select(Event).where(
                Event.quote_request_id == stored(reference).id, Event.type == "kept_apart"
            )
        ).scalars()
        assert [(e.actor, e.data, e.note) for e in events] == [
            (f"user:{coordinator.email}", data, "Her sister, same address")
        ]
    # A third submission now resembles the newest open one, the one kept apart.
    third = submit(client)
    assert stored(third).possible_duplicate_of_id == stored(newer).id


def test_an_undecided_duplicate_cannot_be_rerouted(
    client: FlaskClient, app_context, coordinator: Caller
):
    _, newer = pair(client)
    response = client.post(f"{URL}/{newer}/route", json={}, headers=coordinator.headers)
    assert error(response) == (409, "duplicate_undecided")
    assert acknowledged(newer) == 0


def test_merge_of_an_unknown_reference_is_404(
    client: FlaskClient, app_context, coordinator: Caller
):
    older, _ = pair(client)
    assert error(merge(client, coordinator, "QR-ZZZZ-ZZZZ", into=older)) == (404, "not_found")
    assert error(keep_apart(client, coordinator, "QR-ZZZZ-ZZZZ")) == (404, "not_found")


def test_merge_into_an_unknown_reference_is_422(
    client: FlaskClient, app_context, coordinator: Caller
):
    _, newer = pair(client)
    response = merge(client, coordinator, newer, into="QR-ZZZZ-ZZZZ")
    assert error(response) == (422, "unknown_reference")
    assert "into" in response.get_json()["error"]["fields"]
    assert stored(newer).duplicate_decision is None


def test_merge_into_itself_is_422(client: FlaskClient, app_context, coordinator: Caller):
    _, newer = pair(client)
    response = merge(client, coordinator, newer, into=newer.lower())
    assert error(response) == (422, "merge_into_itself")
    assert "into" in response.get_json()["error"]["fields"]


def test_merge_without_into_is_422(client: FlaskClient, app_context, coordinator: Caller):
    _, newer = pair(client)
    response = merge(client, coordinator, newer)
    assert error(response) == (422, "validation_error")
    assert "into" in response.get_json()["error"]["fields"]


def test_a_request_that_is_not_a_duplicate_is_409(
    client: FlaskClient, app_context, coordinator: Caller
):
    older, newer = pair(client)
    # The older one resembles nothing: it can be neither merged nor kept apart.
    assert error(merge(client, coordinator, older, into=newer)) == (409, "not_a_duplicate")
    assert error(keep_apart(client, coordinator, older)) == (409, "not_a_duplicate")
    # Nor into a request it does not resemble.
    unrelated = submit(client, email="someone.else@example.org")
    assert error(merge(client, coordinator, newer, into=unrelated)) == (409, "not_a_duplicate")
    assert stored(newer).duplicate_decision is None


@pytest.mark.parametrize("first", ["merge", "keep-apart"])
def test_a_decided_duplicate_cannot_be_decided_again(
    client: FlaskClient, app_context, coordinator: Caller, first: str
):
    older, newer = pair(client)
    if first == "merge":
        assert merge(client, coordinator, newer, into=older).status_code == 200
    else:
        assert keep_apart(client, coordinator, newer).status_code == 200
    assert error(merge(client, coordinator, newer, into=older)) == (409, "not_a_duplicate")
    assert error(keep_apart(client, coordinator, newer)) == (409, "not_a_duplicate")


def test_merge_into_a_request_that_ended_is_409(
    client: FlaskClient, app_context, coordinator: Caller
):
    older, newer = pair(client)
    rejected = client.post(
        f"{URL}/{older}/transitions", json={"to": "rejected"}, headers=coordinator.headers
    )
    assert rejected.status_code == 200
    assert error(merge(client, coordinator, newer, into=older)) == (409, "request_not_open")
    # Keeping it apart still works: the newer is then routed on its own.
    assert keep_apart(client, coordinator, newer).status_code == 200


def test_a_stale_version_is_refused(client: FlaskClient, app_context, coordinator: Caller):
    older, newer = pair(client)
    version = detail(client, coordinator, newer)["version"]
    response = merge(client, coordinator, newer, into=older, version=version + 5)
    assert error(response) == (409, "stale_version")
    response = client.post(
        f"{URL}/{newer}/keep-apart", json={}, headers={**coordinator.headers, "If-Match": '"9"'}
    )
    assert error(response) == (412, "precondition_failed")
    assert stored(newer).duplicate_decision is None


def test_only_a_signed_in_coordinator_may_decide(
    client: FlaskClient, app_context, coordinator: Caller
):
    older, newer = pair(client)
    anonymous = client.post(f"{URL}/{newer}/merge", json={"into": older})
    assert error(anonymous) == (401, "unauthorized")
    assert error(client.post(f"{URL}/{newer}/keep-apart", json={})) == (401, "unauthorized")
    revoke_user(coordinator.email)
    db.session.commit()
    assert error(merge(client, coordinator, newer, into=older)) == (401, "unauthorized")
    assert stored(newer).duplicate_decision is None


def test_an_admin_may_decide_too(client: FlaskClient, app_context, admin: Caller):
    older, newer = pair(client)
    assert merge(client, admin, newer, into=older).status_code == 200
