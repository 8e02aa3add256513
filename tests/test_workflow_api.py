"""Workflow and actions: transitions, versions, assignment, notes, reroute, resend."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from quote_service.extensions import db
from quote_service.models import Notification, Provider, QuoteRequest
from quote_service.services import pipeline
from quote_service.services.users import revoke_user
from tests.conftest import Caller
from tests.payloads import minimal_body
from tests.routing_fixtures import received_row

URL = "/api/v1/quote-requests"


def routed_request(client: FlaskClient, **overrides) -> str:
    """A request posted through the API and routed by the pipeline, as the worker would."""
    body = minimal_body(destination="BE", condition="stroke", **overrides)
    reference = client.post(URL, json=body).get_json()["reference"]
    pipeline.process_received(received_row(stored(reference)).id)
    db.session.remove()
    return reference


def stored(reference: str) -> QuoteRequest:
    return db.session.execute(
        db.select(QuoteRequest).where(QuoteRequest.reference == reference)
    ).scalar_one()


def read(client, caller: Caller, reference: str) -> tuple[dict, str]:
    response = client.get(f"{URL}/{reference}", headers=caller.headers)
    return response.get_json(), response.headers["ETag"]


def move(client, caller: Caller, reference: str, to: str, **extra):
    _, etag = read(client, caller, reference)
    return client.post(
        f"{URL}/{reference}/transitions",
        json={"to": to, **extra},
        headers={**caller.headers, "If-Match": etag},
    )


def test_the_whole_happy_path_with_events(client, app_context, coordinator: Caller):
    reference = routed_request(client)
    for to in ("in_review", "quoted", "closed"):
        extra = {"outcome": "booked"} if to == "closed" else {}
        response = move(client, coordinator, reference, to, note=f"now {to}", **extra)
        assert response.status_code == 200, response.get_json()
        assert response.get_json()["status"] == to
        assert response.headers["ETag"] == f'"{response.get_json()["version"]}"'
    body, _ = read(client, coordinator, reference)
    assert body["version"] == 4
    tail = [(e["type"], e["actor"], e["note"]) for e in body["timeline"][-3:]]
    assert tail == [
        ("in_review", f"user:{coordinator.email}", "now in_review"),
        ("quoted", f"user:{coordinator.email}", "now quoted"),
        ("closed", f"user:{coordinator.email}", "now closed"),
    ]


@pytest.mark.parametrize("ending", ["rejected", "withdrawn", "spam"])
def test_endings_from_any_open_state(client, app_context, coordinator: Caller, ending: str):
    reference = routed_request(client)
    assert move(client, coordinator, reference, "in_review").status_code == 200
    assert move(client, coordinator, reference, ending).status_code == 200
    response = move(client, coordinator, reference, "in_review")
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "transition_not_allowed"
    assert response.get_json()["error"]["allowed"] == []


def test_an_illegal_move_is_409_listing_the_allowed_ones(client, app_context, coordinator):
    reference = routed_request(client)
    response = move(client, coordinator, reference, "closed")
    assert response.status_code == 409
    error = response.get_json()["error"]
    assert error["code"] == "transition_not_allowed"
    assert error["allowed"] == ["in_review", "rejected", "withdrawn", "spam"]
    assert "to" in error["fields"]
    assert read(client, coordinator, reference)[0]["status"] == "routed"


def test_an_unknown_status_is_422(client, app_context, coordinator):
    reference = routed_request(client)
    response = move(client, coordinator, reference, "done")
    assert response.status_code == 422
    assert "to" in response.get_json()["error"]["fields"]


def test_the_worker_owns_routing(client, coordinator: Caller):
    reference = client.post(URL, json=minimal_body()).get_json()["reference"]
    response = move(client, coordinator, reference, "routed")
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "transition_not_allowed"


def test_two_coordinators_never_overwrite_each_other(
    client, app_context, coordinator: Caller, other_coordinator: Caller
):
    reference = routed_request(client)
    _, etag_a = read(client, coordinator, reference)
    _, etag_b = read(client, other_coordinator, reference)
    first = client.post(
        f"{URL}/{reference}/transitions",
        json={"to": "in_review"},
        headers={**coordinator.headers, "If-Match": etag_a},
    )
    second = client.post(
        f"{URL}/{reference}/transitions",
        json={"to": "rejected"},
        headers={**other_coordinator.headers, "If-Match": etag_b},
    )
    assert first.status_code == 200
    assert second.status_code == 412
    assert second.get_json()["error"]["code"] == "precondition_failed"
    assert read(client, coordinator, reference)[0]["status"] == "in_review"


def test_a_stale_version_in_the_body_is_409(client, app_context, coordinator: Caller):
    reference = routed_request(client)
    body, _ = read(client, coordinator, reference)
    assert move(client, coordinator, reference, "in_review").status_code == 200
    response = client.post(
        f"{URL}/{reference}/transitions",
        json={"to": "quoted", "version": body["version"]},
        headers=coordinator.headers,
    )
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "stale_version"
    assert "version" in response.get_json()["error"]["fields"]


def test_the_contracts_own_transition_body_is_served_without_a_version(
    client, app_context, coordinator: Caller
):
    reference = routed_request(client)
    response = client.post(
        f"{URL}/{reference}/transitions",
        json={"to": "in_review", "note": "Looking at it"},
        headers=coordinator.headers,
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["status"] == "in_review"
    assert response.get_json()["version"] == 2
    body, _ = read(client, coordinator, reference)
    assert (body["timeline"][-1]["type"], body["timeline"][-1]["note"]) == (
        "in_review",
        "Looking at it",
    )


@pytest.mark.parametrize(
    ("suffix", "body"),
    [("assignment", {"assignee": "me", "note": "mine"}), ("route", {"note": "again"})],
)
def test_assignment_and_reroute_are_served_without_a_version(
    client, app_context, coordinator: Caller, suffix: str, body: dict
):
    reference = routed_request(client)
    response = client.post(f"{URL}/{reference}/{suffix}", json=body, headers=coordinator.headers)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["version"] == 2


@pytest.mark.parametrize(
    ("suffix", "body"),
    [
        ("transitions", {"to": "in_review"}),
        ("assignment", {"assignee": "me"}),
        ("route", {}),
    ],
)
def test_a_stale_version_is_still_refused_412_by_header_409_by_body(
    client, app_context, coordinator: Caller, suffix: str, body: dict
):
    reference = routed_request(client)
    _, stale = read(client, coordinator, reference)
    assert (
        client.post(
            f"{URL}/{reference}/notes", json={"note": "no bump"}, headers=coordinator.headers
        ).status_code
        == 201
    )
    # Someone else changes the request (no version: served) after we read it.
    changed = client.post(
        f"{URL}/{reference}/assignment", json={"assignee": None}, headers=coordinator.headers
    )
    assert changed.status_code == 200

    by_header = client.post(
        f"{URL}/{reference}/{suffix}", json=body, headers={**coordinator.headers, "If-Match": stale}
    )
    assert by_header.status_code == 412
    assert by_header.get_json()["error"]["code"] == "precondition_failed"
    by_body = client.post(
        f"{URL}/{reference}/{suffix}",
        json={**body, "version": int(stale.strip('"'))},
        headers=coordinator.headers,
    )
    assert by_body.status_code == 409
    assert by_body.get_json()["error"]["code"] == "stale_version"
    assert "version" in by_body.get_json()["error"]["fields"]
    assert read(client, coordinator, reference)[0]["version"] == 2


def test_an_illegal_move_without_a_version_is_still_409(client, app_context, coordinator: Caller):
    reference = routed_request(client)
    response = client.post(
        f"{URL}/{reference}/transitions", json={"to": "closed"}, headers=coordinator.headers
    )
    assert response.status_code == 409
    error = response.get_json()["error"]
    assert error["code"] == "transition_not_allowed"
    assert error["allowed"] == ["in_review", "rejected", "withdrawn", "spam"]
    assert read(client, coordinator, reference)[0]["status"] == "routed"


def test_a_malformed_if_match_is_422(client, app_context, coordinator: Caller):
    reference = routed_request(client)
    response = client.post(
        f"{URL}/{reference}/transitions",
        json={"to": "in_review"},
        headers={**coordinator.headers, "If-Match": "yesterday"},
    )
    assert response.status_code == 422


@pytest.mark.parametrize(
    "suffix", ["transitions", "assignment", "notes", "route", "acknowledgement"]
)
def test_actions_refuse_without_token_and_on_unknown_reference(client, coordinator, suffix):
    assert client.post(f"{URL}/QR-AAAAAAAA/{suffix}", json={}).status_code == 401
    body = {
        "transitions": {"to": "in_review", "version": 1},
        "assignment": {"assignee": "me", "version": 1},
        "notes": {"note": "hello"},
        "route": {"version": 1},
        "acknowledgement": {},
    }[suffix]
    response = client.post(f"{URL}/QR-AAAAAAAA/{suffix}", json=body, headers=coordinator.headers)
    assert response.status_code == 404


def test_unknown_fields_in_action_bodies_are_422(client, app_context, coordinator):
    reference = routed_request(client)
    response = client.post(
        f"{URL}/{reference}/notes",
        json={"note": "x", "status": "closed"},
        headers=coordinator.headers,
    )
    assert response.status_code == 422
    assert response.get_json()["error"]["fields"] == {"status": ["Unknown field."]}


def test_claim_assign_and_unassign(
    client, app_context, coordinator: Caller, other_coordinator: Caller
):
    reference = routed_request(client)

    def assign(assignee):
        _, etag = read(client, coordinator, reference)
        return client.post(
            f"{URL}/{reference}/assignment",
            json={"assignee": assignee},
            headers={**coordinator.headers, "If-Match": etag},
        )

    claimed = assign("me")
    assert claimed.status_code == 200
    assert claimed.get_json()["assignee"] == {
        "id": coordinator.id,
        "email": coordinator.email,
        "name": None,
    }
    handed = assign(other_coordinator.id)
    assert handed.get_json()["assignee"]["id"] == other_coordinator.id
    released = assign(None)
    assert released.get_json()["assignee"] is None
    body, _ = read(client, coordinator, reference)
    assert [e["type"] for e in body["timeline"][-3:]] == ["assigned", "assigned", "unassigned"]
    assert body["timeline"][-2]["data"]["assignee_id"] == other_coordinator.id


def test_assigning_to_an_unknown_or_revoked_user_is_422(
    client, app, app_context, coordinator: Caller, other_coordinator: Caller
):
    reference = routed_request(client)
    with app.app_context():
        revoke_user(other_coordinator.email)
    for assignee in (9999, other_coordinator.id, "someone", True):
        response = client.post(
            f"{URL}/{reference}/assignment",
            json={"assignee": assignee, "version": 1},
            headers=coordinator.headers,
        )
        assert response.status_code == 422, assignee
        assert "assignee" in response.get_json()["error"]["fields"]


def test_notes_go_into_the_timeline(client, app_context, coordinator: Caller):
    reference = routed_request(client)
    response = client.post(
        f"{URL}/{reference}/notes",
        json={"note": "Called the patient."},
        headers=coordinator.headers,
    )
    assert response.status_code == 201
    assert response.get_json()["type"] == "note"
    body, _ = read(client, coordinator, reference)
    assert body["timeline"][-1]["note"] == "Called the patient."
    assert body["timeline"][-1]["actor"] == f"user:{coordinator.email}"
    empty = client.post(f"{URL}/{reference}/notes", json={"note": " "}, headers=coordinator.headers)
    assert empty.status_code == 422


def test_reroute_to_a_chosen_provider_emails_it(client, app_context, coordinator: Caller):
    reference = routed_request(client, preferred_language="en")
    first_provider = stored(reference).provider_id
    other = (
        db.session.execute(
            db.select(Provider)
            .where(Provider.destination_code == "BE", Provider.id != first_provider)
            .where(Provider.conditions.any(slug="stroke"))
        )
        .scalars()
        .first()
    )
    _, etag = read(client, coordinator, reference)
    response = client.post(
        f"{URL}/{reference}/route",
        json={"provider_id": other.id, "note": "Patient asked for this clinic."},
        headers={**coordinator.headers, "If-Match": etag},
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["provider"]["id"] == other.id
    body, _ = read(client, coordinator, reference)
    decision = body["routing"]["decision"]
    assert decision["actor"] == f"user:{coordinator.email}"
    assert decision["note"] == "Patient asked for this clinic."
    assert len(body["routing"]["history"]) == 2
    provider_emails = [n for n in body["notifications"] if n["kind"] == "provider"]
    assert [n["recipient"] for n in provider_emails][-1] == other.contact_email
    acks = [n for n in body["notifications"] if n["kind"] == "acknowledgement"]
    assert len(acks) == 1  # the patient is not acknowledged twice
    # The reroute, the first clinic withdrawn, then the chosen clinic's invitation to quote.
    assert [e["type"] for e in body["timeline"]][-3:] == [
        "rerouted",
        "invitation_withdrawn",
        "invitation_sent",
    ]


def test_reroute_runs_routing_again_without_a_choice(client, app_context, coordinator):
    reference = routed_request(client)
    response = client.post(
        f"{URL}/{reference}/route", json={"version": 1}, headers=coordinator.headers
    )
    assert response.status_code == 200
    assert response.get_json()["status"] == "routed"
    assert response.get_json()["version"] == 2


@pytest.mark.parametrize("pick", ["other-destination", "inactive", "unknown"])
def test_reroute_refuses_a_provider_that_cannot_take_it(
    client, app_context, coordinator: Caller, pick: str
):
    reference = routed_request(client)
    if pick == "other-destination":
        provider_id = (
            db.session.execute(db.select(Provider.id).where(Provider.destination_code == "AG"))
            .scalars()
            .first()
        )
    elif pick == "inactive":
        provider = (
            db.session.execute(db.select(Provider).where(Provider.destination_code == "BE"))
            .scalars()
            .first()
        )
        provider.active = False
        db.session.commit()
        provider_id = provider.id
    else:
        provider_id = 999999
    try:
        response = client.post(
            f"{URL}/{reference}/route",
            json={"provider_id": provider_id, "version": 1},
            headers=coordinator.headers,
        )
        assert response.status_code == 422
        assert "provider_id" in response.get_json()["error"]["fields"]
    finally:
        db.session.execute(db.update(Provider).values(active=True))
        db.session.commit()


def test_a_closed_request_cannot_be_rerouted(client, app_context, coordinator: Caller):
    reference = routed_request(client)
    assert move(client, coordinator, reference, "rejected").status_code == 200
    body, etag = read(client, coordinator, reference)
    response = client.post(
        f"{URL}/{reference}/route", json={}, headers={**coordinator.headers, "If-Match": etag}
    )
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "reroute_not_allowed"


def test_resend_makes_a_new_acknowledgement_through_the_guard(client, app_context, coordinator):
    reference = routed_request(client)
    response = client.post(
        f"{URL}/{reference}/acknowledgement",
        json={"note": "Patient lost the email."},
        headers=coordinator.headers,
    )
    assert response.status_code == 201
    resent = response.get_json()
    assert resent["kind"] == "acknowledgement"
    assert resent["status"] == "pending"
    assert resent["disclaimers"]
    acks = (
        db.session.execute(db.select(Notification).where(Notification.kind == "acknowledgement"))
        .scalars()
        .all()
    )
    assert len(acks) == 2
    assert len({a.message_id for a in acks}) == 2
    body, _ = read(client, coordinator, reference)
    assert body["timeline"][-1]["type"] == "acknowledgement_resent"


def test_no_resend_before_the_first_acknowledgement(client, coordinator: Caller):
    reference = client.post(URL, json=minimal_body()).get_json()["reference"]
    response = client.post(
        f"{URL}/{reference}/acknowledgement", json={}, headers=coordinator.headers
    )
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "not_acknowledged_yet"


@pytest.mark.parametrize(
    ("suffix", "body", "field"),
    [
        ("route", {"provider_id": 2**40, "version": 1}, "provider_id"),
        ("assignment", {"assignee": 2**40, "version": 1}, "assignee"),
    ],
)
def test_ids_beyond_the_database_range_are_422(
    client, app_context, coordinator: Caller, suffix, body, field
):
    reference = routed_request(client)
    response = client.post(f"{URL}/{reference}/{suffix}", json=body, headers=coordinator.headers)
    assert response.status_code == 422
    assert field in response.get_json()["error"]["fields"]
