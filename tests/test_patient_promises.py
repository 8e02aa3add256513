"""What the service promised a patient holds: no resend after the request ended,
nothing to an erased request, the consent's whole state in the detail."""

from __future__ import annotations

import pytest

from quote_service.extensions import db
from quote_service.models import Notification
from tests.conftest import Caller
from tests.test_workflow_api import URL, move, read, routed_request


def acknowledgements() -> int:
    return db.session.execute(
        db.select(db.func.count(Notification.id)).where(Notification.kind == "acknowledgement")
    ).scalar_one()


def test_a_resend_after_erasure_is_409_request_erased(
    client, app_context, coordinator: Caller, admin: Caller
):
    reference = routed_request(client, email="erased.resend@example.org")
    erased = client.post(
        "/api/v1/privacy/erasure",
        json={"email": "erased.resend@example.org"},
        headers=admin.headers,
    )
    assert erased.status_code == 200, erased.get_json()
    before = acknowledgements()
    response = client.post(
        f"{URL}/{reference}/acknowledgement", json={}, headers=coordinator.headers
    )
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "request_erased"
    db.session.remove()
    assert acknowledgements() == before


@pytest.mark.parametrize("path", [("withdrawn",), ("rejected",), ("in_review", "quoted", "closed")])
def test_no_resend_once_the_request_ended(client, app_context, coordinator: Caller, path):
    reference = routed_request(client)
    for to in path:
        extra = {"outcome": "no-response"} if to == "closed" else {}
        assert move(client, coordinator, reference, to, **extra).status_code == 200
    before = acknowledgements()
    response = client.post(
        f"{URL}/{reference}/acknowledgement", json={}, headers=coordinator.headers
    )
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "request_not_open"
    db.session.remove()
    assert acknowledgements() == before


def test_a_resend_for_an_open_request_is_still_served(client, app_context, coordinator: Caller):
    reference = routed_request(client)
    assert move(client, coordinator, reference, "in_review").status_code == 200
    response = client.post(
        f"{URL}/{reference}/acknowledgement", json={}, headers=coordinator.headers
    )
    assert response.status_code == 201


def test_the_detail_shows_the_consents_whole_state(client, app_context, coordinator: Caller):
    reference = routed_request(client)
    body, _ = read(client, coordinator, reference)
    consent = body["consent"]
    assert consent["given_at"] == consent["at"]
    assert consent["given_at"][:19] == body["created_at"][:19]
    assert consent["version"] >= 1
    assert consent["withdrawn_at"] is None
    assert move(client, coordinator, reference, "withdrawn").status_code == 200
    body, _ = read(client, coordinator, reference)
    assert body["consent"]["withdrawn_at"] is not None
    assert body["consent"]["given_at"] == consent["given_at"]


def test_a_version_ahead_of_the_request_is_not_called_a_change(
    client, app_context, coordinator: Caller
):
    reference = routed_request(client)
    _, etag = read(client, coordinator, reference)
    current = int(etag.strip('"'))
    response = client.post(
        f"{URL}/{reference}/transitions",
        json={"to": "in_review", "version": current + 3},
        headers=coordinator.headers,
    )
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "stale_version"
    message = response.get_json()["error"]["message"]
    assert f"no version {current + 3}" in message
    assert "changed since you read" not in message
    behind = client.post(
        f"{URL}/{reference}/transitions",
        json={"to": "in_review", "version": current - 1},
        headers=coordinator.headers,
    )
    assert behind.status_code == 409
    assert behind.get_json()["error"]["code"] == "stale_version"
    assert f"you read version {current - 1}" in behind.get_json()["error"]["message"]


def test_a_reroute_record_does_not_contradict_itself(client, app_context, coordinator: Caller):
    from quote_service.models import Provider
    from tests.test_workflow_api import stored

    reference = routed_request(client, preferred_language="en")
    first = stored(reference).provider_id
    other = (
        db.session.execute(
            db.select(Provider)
            .where(Provider.destination_code == "BE", Provider.id != first)
            .where(Provider.conditions.any(slug="stroke"))
        )
        .scalars()
        .first()
    )
    response = client.post(
        f"{URL}/{reference}/route", json={"provider_id": other.id}, headers=coordinator.headers
    )
    assert response.status_code == 200, response.get_json()
    body, _ = read(client, coordinator, reference)
    for candidate in body["routing"]["decision"]["candidates"]:
        said_chosen = any(r.startswith("chosen") for r in candidate["reasons"])
        assert said_chosen == candidate["chosen"], candidate
