"""Coordinators correct what a patient typed, close with an outcome, and reopen in time."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient

from quote_service.addresses import mailbox
from quote_service.crypto import keyring
from quote_service.extensions import db
from quote_service.models import Event, Notification, utcnow
from quote_service.services import privacy
from quote_service.services.users import revoke_user
from tests.conftest import Caller
from tests.test_workflow_api import URL, move, read, routed_request, stored

OUTCOMES = ["booked", "patient-declined", "no-response", "clinic-declined", "other"]


def patch(client: FlaskClient, caller: Caller, reference: str, body: dict, **headers):
    return client.patch(f"{URL}/{reference}", json=body, headers={**caller.headers, **headers})


def reopen(client: FlaskClient, caller: Caller, reference: str, body: dict, **headers):
    return client.post(
        f"{URL}/{reference}/reopen", json=body, headers={**caller.headers, **headers}
    )


def close(client: FlaskClient, caller: Caller, reference: str, outcome: str = "booked"):
    for to in ("in_review", "quoted"):
        assert move(client, caller, reference, to).status_code == 200
    response = move(client, caller, reference, "closed", outcome=outcome, note="Booked in May.")
    assert response.status_code == 200, response.get_json()
    return response


def error(response) -> dict:
    return response.get_json()["error"]


def events(reference: str, type_: str) -> list[Event]:
    db.session.remove()
    return [event for event in stored(reference).events if event.type == type_]


# --- Corrections --------------------------------------------------------------


def test_a_correction_changes_the_fields_sent_and_records_only_their_names(
    client, app_context, coordinator: Caller
):
    reference = routed_request(client, email="jan.peters@exmaple.org", country_of_residence="BE")
    start = date.today() + timedelta(days=40)
    body, etag = read(client, coordinator, reference)
    response = patch(
        client,
        coordinator,
        reference,
        {
            "email": "Jan.Peeters@Example.org",
            "phone": "0470 12 34 56",  # national: read in the country of residence (BE)
            "full_name": "Jan Peeters",
            "preferred_language": "nl",
            "travel_from": start.isoformat(),
            "travel_to": (start + timedelta(days=10)).isoformat(),
            "note": "Patient phoned: typo in the address.",
        },
        **{"If-Match": etag},
    )

    assert response.status_code == 200, response.get_json()
    detail = response.get_json()
    assert detail["email"] == "Jan.Peeters@example.org"
    assert detail["phone"] == "+32470123456"
    assert (detail["full_name"], detail["preferred_language"]) == ("Jan Peeters", "nl")
    assert detail["travel_from"] == start.isoformat()
    assert detail["version"] == body["version"] + 1
    assert response.headers["ETag"] == f'"{detail["version"]}"'
    (corrected,) = events(reference, "corrected")
    assert corrected.actor == f"user:{coordinator.email}"
    assert corrected.data == {
        "fields": [
            "full_name",
            "email",
            "phone",
            "preferred_language",
            "travel_from",
            "travel_to",
        ]
    }
    assert corrected.note == "Patient phoned: typo in the address."
    # Never a value in clear in the event's data.
    assert "example.org" not in json.dumps(corrected.data).lower()
    assert "470" not in json.dumps(corrected.data)


def test_a_correction_moves_the_lookup_hashes(client, app_context, coordinator: Caller):
    reference = routed_request(client, email="old.typo@exmaple.org")
    response = patch(
        client, coordinator, reference, {"email": "anna+quotes@example.org", "phone": "+3222222222"}
    )
    assert response.status_code == 200, response.get_json()

    db.session.remove()
    row = stored(reference)
    assert row.email_hash == keyring().lookup_hash("anna+quotes@example.org")
    assert row.email_mailbox_hash == keyring().lookup_hash(mailbox("anna+quotes@example.org"))
    assert row.phone_hash == keyring().lookup_hash("+3222222222")
    # The queue's search by address finds the new one, not the typo.
    found = client.get(
        URL, query_string={"q": "anna+quotes@example.org"}, headers=coordinator.headers
    )
    assert [item["reference"] for item in found.get_json()["items"]] == [reference]
    gone = client.get(URL, query_string={"q": "old.typo@exmaple.org"}, headers=coordinator.headers)
    assert gone.get_json()["items"] == []


def test_null_clears_the_optional_fields(client, app_context, coordinator: Caller):
    start = date.today() + timedelta(days=30)
    reference = routed_request(
        client,
        phone="+32 470 12 34 56",
        travel_from=start.isoformat(),
        travel_to=(start + timedelta(days=3)).isoformat(),
    )
    response = patch(
        client, coordinator, reference, {"phone": None, "travel_from": None, "travel_to": None}
    )
    assert response.status_code == 200, response.get_json()
    detail = response.get_json()
    assert (detail["phone"], detail["travel_from"], detail["travel_to"]) == (None, None, None)
    db.session.remove()
    assert stored(reference).phone_hash is None


def test_the_same_values_change_nothing(client, app_context, coordinator: Caller):
    reference = routed_request(client, email="same@example.org")
    before, _ = read(client, coordinator, reference)
    response = patch(client, coordinator, reference, {"email": "same@example.org"})
    assert response.status_code == 200
    assert response.get_json()["version"] == before["version"]
    assert events(reference, "corrected") == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"colour": "blue"}, "colour"),
        ({"condition": "diabetes-type-2"}, "condition"),  # not correctable
        ({"email": "a@example.org", "status": "closed"}, "status"),
    ],
)
def test_an_unknown_field_is_a_422_naming_it(
    client, app_context, coordinator: Caller, body: dict, field: str
):
    reference = routed_request(client)
    response = patch(client, coordinator, reference, body)
    assert response.status_code == 422
    assert error(response)["code"] == "validation_error"
    assert field in error(response)["fields"]
    assert events(reference, "corrected") == []


@pytest.mark.parametrize("body", [{}, {"version": 1}, {"note": "nothing else"}, {"phone": ""}])
def test_nothing_to_correct_is_a_422(client, app_context, coordinator: Caller, body: dict):
    reference = routed_request(client)
    response = patch(client, coordinator, reference, body)
    assert response.status_code == 422
    assert error(response)["code"] == "validation_error"
    assert "Send at least one field to correct" in error(response)["message"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "jan.peeters@"}, "email"),
        ({"email": "jan peeters@example.org"}, "email"),
        ({"phone": "12"}, "phone"),
        ({"phone": "0470 12 34"}, "phone"),
        ({"full_name": "\u200b"}, "full_name"),
        ({"full_name": "Anna\u202eexe"}, "full_name"),
        ({"preferred_language": "xx"}, "preferred_language"),
        ({"travel_from": "2020-01-01"}, "travel_from"),
        ({"travel_to": (date.today() + timedelta(days=10 * 365)).isoformat()}, "travel_to"),
        ({"travel_to": (date.today() + timedelta(days=1)).isoformat()}, "travel_to"),
        ({"travel_from": (date.today() + timedelta(days=400)).isoformat()}, "travel_from"),
        ({"full_name": 42}, "full_name"),
    ],
)
def test_a_correction_failing_the_intake_rules_names_the_field(
    client, app_context, coordinator: Caller, body: dict, field: str
):
    start = date.today() + timedelta(days=30)
    reference = routed_request(
        client,
        country_of_residence="BE",
        travel_from=start.isoformat(),
        travel_to=(start + timedelta(days=5)).isoformat(),
    )
    before, _ = read(client, coordinator, reference)
    response = patch(client, coordinator, reference, body)
    assert response.status_code == 422, response.get_json()
    assert error(response)["code"] == "validation_error"
    assert set(error(response)["fields"]) == {field}
    after, _ = read(client, coordinator, reference)
    assert after["version"] == before["version"]
    assert (after["email"], after["travel_to"]) == (before["email"], before["travel_to"])


def test_a_stale_version_is_a_409_in_the_body_and_a_412_in_if_match(
    client, app_context, coordinator: Caller
):
    reference = routed_request(client, email="stale@example.org")
    _, etag = read(client, coordinator, reference)
    assert move(client, coordinator, reference, "in_review").status_code == 200

    in_body = patch(
        client,
        coordinator,
        reference,
        {"email": "new@example.org", "version": int(etag.strip('"'))},
    )
    assert in_body.status_code == 409
    assert error(in_body)["code"] == "stale_version"
    assert "version" in error(in_body)["fields"]

    in_header = patch(
        client, coordinator, reference, {"email": "new@example.org"}, **{"If-Match": etag}
    )
    assert in_header.status_code == 412
    assert error(in_header)["code"] == "precondition_failed"

    assert read(client, coordinator, reference)[0]["email"] == "stale@example.org"
    assert events(reference, "corrected") == []


def test_an_erased_request_is_409_request_erased(client, app_context, coordinator: Caller):
    reference = routed_request(client, email="erase.me@example.org")
    privacy.anonymise(stored(reference), "cli", "asked by the patient")
    db.session.commit()
    response = patch(client, coordinator, reference, {"email": "other@example.org"})
    assert response.status_code == 409
    assert error(response)["code"] == "request_erased"


@pytest.mark.parametrize("ending", ["rejected", "withdrawn", "spam"])
def test_an_ended_request_is_409_request_not_open(
    client, app_context, coordinator: Caller, ending: str
):
    reference = routed_request(client)
    assert move(client, coordinator, reference, ending).status_code == 200
    response = patch(client, coordinator, reference, {"full_name": "Marie Dupont"})
    assert response.status_code == 409
    assert error(response)["code"] == "request_not_open"


def test_a_closed_request_is_409_request_not_open(client, app_context, coordinator: Caller):
    reference = routed_request(client)
    close(client, coordinator, reference)
    response = patch(client, coordinator, reference, {"full_name": "Marie Dupont"})
    assert response.status_code == 409
    assert error(response)["code"] == "request_not_open"


def test_a_corrected_email_gets_one_acknowledgement_past_the_cap(
    app: Flask, client, app_context, coordinator: Caller, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setitem(app.config, "ACKNOWLEDGEMENTS_PER_RECIPIENT_PER_DAY", 1)
    # The right address already had its daily acknowledgement, for another request.
    routed_request(client, email="anna@example.org")
    reference = routed_request(client, email="anna@exmaple.org")

    capped = client.post(f"{URL}/{reference}/acknowledgement", json={}, headers=coordinator.headers)
    assert capped.get_json()["status"] == "suppressed"  # the typo's own cap

    assert patch(client, coordinator, reference, {"email": "anna@example.org"}).status_code == 200
    first = client.post(f"{URL}/{reference}/acknowledgement", json={}, headers=coordinator.headers)
    assert first.status_code == 201
    assert (first.get_json()["status"], first.get_json()["recipient"]) == (
        "pending",
        "anna@example.org",
    )
    second = client.post(f"{URL}/{reference}/acknowledgement", json={}, headers=coordinator.headers)
    assert second.get_json()["status"] == "suppressed"  # once, not for ever

    resent = events(reference, "acknowledgement_resent")
    assert [event.data.get("past_cap") for event in resent] == [None, True, None]


def test_a_correction_of_another_field_opens_no_way_past_the_cap(
    app: Flask, client, app_context, coordinator: Caller, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setitem(app.config, "ACKNOWLEDGEMENTS_PER_RECIPIENT_PER_DAY", 1)
    reference = routed_request(client, email="capped@example.org")
    assert patch(client, coordinator, reference, {"full_name": "Marie Dupont"}).status_code == 200
    response = client.post(
        f"{URL}/{reference}/acknowledgement", json={}, headers=coordinator.headers
    )
    assert response.get_json()["status"] == "suppressed"
    db.session.remove()
    statuses = db.session.execute(
        db.select(Notification.status).where(Notification.kind == "acknowledgement")
    ).scalars()
    assert sorted(statuses) == ["pending", "suppressed"]


# --- Outcomes -----------------------------------------------------------------


@pytest.mark.parametrize("outcome", OUTCOMES)
def test_closing_stores_its_outcome_in_the_item_the_detail_and_the_event(
    client, app_context, coordinator: Caller, outcome: str
):
    reference = routed_request(client)
    closed = close(client, coordinator, reference, outcome)
    assert closed.get_json()["outcome"] == outcome
    detail, _ = read(client, coordinator, reference)
    assert (detail["status"], detail["outcome"]) == ("closed", outcome)
    queue = client.get(URL, query_string={"status": "closed"}, headers=coordinator.headers)
    assert [(i["reference"], i["outcome"]) for i in queue.get_json()["items"]] == [
        (reference, outcome)
    ]
    (event,) = events(reference, "closed")
    assert event.data == {"previous": "quoted", "outcome": outcome}
    assert event.note == "Booked in May."


def test_closing_as_the_contract_names_it_is_served_without_an_outcome(
    client, app_context, coordinator: Caller
):
    """`{"to": "closed", "note"}` is the contract's body: served, the outcome left unknown."""
    reference = routed_request(client)
    for to in ("in_review", "quoted"):
        assert move(client, coordinator, reference, to).status_code == 200
    response = move(client, coordinator, reference, "closed", note="done")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["status"] == "closed" and response.get_json()["outcome"] is None
    (event,) = events(reference, "closed")
    assert event.data == {"previous": "quoted"}


@pytest.mark.parametrize(
    ("to", "outcome"), [("closed", "sold"), ("closed", ""), ("rejected", "booked")]
)
def test_a_wrong_outcome_or_one_for_another_move_is_a_422(
    client, app_context, coordinator: Caller, to: str, outcome: str
):
    reference = routed_request(client)
    for step in ("in_review", "quoted"):
        assert move(client, coordinator, reference, step).status_code == 200
    response = move(client, coordinator, reference, to, outcome=outcome)
    assert response.status_code == 422
    assert set(error(response)["fields"]) == {"outcome"}
    assert read(client, coordinator, reference)[0]["status"] == "quoted"


def test_the_transitions_contract_without_outcome_still_serves_other_moves(
    client, app_context, coordinator: Caller
):
    reference = routed_request(client)
    response = client.post(
        f"{URL}/{reference}/transitions",
        json={"to": "in_review", "note": "Looking"},
        headers=coordinator.headers,
    )
    assert response.status_code == 200
    assert response.get_json()["outcome"] is None


# --- Reopening ----------------------------------------------------------------


def test_a_closed_request_reopens_to_in_review_with_its_reason(
    client, app_context, coordinator: Caller
):
    reference = routed_request(client)
    close(client, coordinator, reference, "patient-declined")
    _, etag = read(client, coordinator, reference)
    response = reopen(
        client, coordinator, reference, {"reason": "The patient wrote back."}, **{"If-Match": etag}
    )
    assert response.status_code == 200, response.get_json()
    item = response.get_json()
    assert (item["status"], item["outcome"]) == ("in_review", None)
    assert response.headers["ETag"] == f'"{int(etag.strip(chr(34))) + 1}"'
    (event,) = events(reference, "reopened")
    assert event.actor == f"user:{coordinator.email}"
    assert event.note == "The patient wrote back."
    assert event.data == {"previous": "closed", "outcome": "patient-declined"}
    # Back in the workflow: it can be quoted and closed again.
    assert move(client, coordinator, reference, "quoted").status_code == 200
    again = move(client, coordinator, reference, "closed", outcome="booked")
    assert again.get_json()["outcome"] == "booked"


def test_a_rejected_request_reopens(client, app_context, coordinator: Caller):
    reference = routed_request(client)
    assert move(client, coordinator, reference, "rejected").status_code == 200
    response = reopen(client, coordinator, reference, {"reason": "Rejected by mistake."})
    assert response.status_code == 200
    assert response.get_json()["status"] == "in_review"
    assert events(reference, "reopened")[0].data == {"previous": "rejected", "outcome": None}


def test_reopening_too_late_is_409_reopen_too_late(app: Flask, client, app_context, coordinator):
    reference = routed_request(client)
    close(client, coordinator, reference)
    days = app.config["REOPEN_DAYS"]
    assert days == 30  # the default
    (closed,) = events(reference, "closed")
    closed.at = utcnow() - timedelta(days=days, minutes=1)
    db.session.commit()

    response = reopen(client, coordinator, reference, {"reason": "Too late?"})
    assert response.status_code == 409
    assert error(response)["code"] == "reopen_too_late"
    assert error(response)["reopen_days"] == 30
    assert read(client, coordinator, reference)[0]["status"] == "closed"


def test_reopening_just_in_time_is_served(app: Flask, client, app_context, coordinator):
    reference = routed_request(client)
    close(client, coordinator, reference)
    (closed,) = events(reference, "closed")
    closed.at = utcnow() - timedelta(days=app.config["REOPEN_DAYS"] - 1)
    db.session.commit()
    response = reopen(client, coordinator, reference, {"reason": "Still in time."})
    assert response.status_code == 200


def test_reopen_days_zero_never_reopens(
    app: Flask, client, app_context, coordinator: Caller, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setitem(app.config, "REOPEN_DAYS", 0)
    reference = routed_request(client)
    assert move(client, coordinator, reference, "rejected").status_code == 200
    response = reopen(client, coordinator, reference, {"reason": "Now?"})
    assert response.status_code == 409
    assert error(response)["code"] == "reopen_too_late"


@pytest.mark.parametrize("body", [{}, {"reason": ""}, {"reason": "   "}, {"note": "why"}])
def test_reopening_needs_a_reason(client, app_context, coordinator: Caller, body: dict):
    reference = routed_request(client)
    assert move(client, coordinator, reference, "rejected").status_code == 200
    response = reopen(client, coordinator, reference, body)
    assert response.status_code == 422
    fields = error(response)["fields"]
    assert "reason" in fields or "note" in fields


@pytest.mark.parametrize("path", [(), ("in_review",), ("withdrawn",), ("spam",)])
def test_only_closed_or_rejected_requests_reopen(
    client, app_context, coordinator: Caller, path: tuple[str, ...]
):
    reference = routed_request(client)
    for to in path:
        assert move(client, coordinator, reference, to).status_code == 200
    response = reopen(client, coordinator, reference, {"reason": "Again"})
    assert response.status_code == 409
    assert error(response)["code"] == "reopen_not_allowed"
    assert "only a closed or rejected request can be reopened" in error(response)["message"]


def test_a_merged_duplicate_does_not_reopen(client, app_context, coordinator: Caller):
    """Its details joined the request it repeated: that one is the one to take up."""
    reference = routed_request(client)
    row = stored(reference)
    row.status, row.duplicate_decision = "closed", "merged"
    db.session.commit()
    response = reopen(client, coordinator, reference, {"reason": "Again"})
    assert response.status_code == 409
    assert error(response)["code"] == "reopen_not_allowed"
    assert "merged into another request" in error(response)["message"]


def test_reopening_on_a_stale_version_is_409_or_412(client, app_context, coordinator: Caller):
    reference = routed_request(client)
    _, etag = read(client, coordinator, reference)
    assert move(client, coordinator, reference, "rejected").status_code == 200
    stale = int(etag.strip('"'))
    in_body = reopen(client, coordinator, reference, {"reason": "x", "version": stale})
    assert in_body.status_code == 409
    assert error(in_body)["code"] == "stale_version"
    assert "version" in error(in_body)["fields"]
    in_header = reopen(client, coordinator, reference, {"reason": "x"}, **{"If-Match": etag})
    assert in_header.status_code == 412
    assert error(in_header)["code"] == "precondition_failed"
    assert read(client, coordinator, reference)[0]["status"] == "rejected"


def test_an_erased_closed_request_does_not_reopen(client, app_context, coordinator: Caller):
    reference = routed_request(client)
    assert move(client, coordinator, reference, "rejected").status_code == 200
    privacy.anonymise(stored(reference), "cli", "retention")
    db.session.commit()
    response = reopen(client, coordinator, reference, {"reason": "Again"})
    assert response.status_code == 409
    assert error(response)["code"] == "request_erased"


def test_transitions_from_closed_keep_their_409(client, app_context, coordinator: Caller):
    """Reopening is its own action: `{"to": "in_review"}` from closed is still refused."""
    reference = routed_request(client)
    close(client, coordinator, reference)
    response = move(client, coordinator, reference, "in_review", note="again")
    assert response.status_code == 409
    assert error(response)["allowed"] == []
    assert "reopen" in error(response)["message"]


# --- Who may ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("patch", "", {"email": "x@example.org"}),
        ("post", "/reopen", {"reason": "x"}),
        ("post", "/transitions", {"to": "closed", "outcome": "booked"}),
    ],
)
def test_no_token_a_wrong_one_or_a_revoked_one_is_401(
    app: Flask, client, app_context, other_coordinator: Caller, method, suffix, body
):
    reference = routed_request(client)
    with app.app_context():
        revoke_user(other_coordinator.email)
    for headers in (
        {},
        {"Authorization": "Bearer qs_not-a-token"},
        {"Authorization": "Basic YTpi"},
        other_coordinator.headers,
    ):
        response = getattr(client, method)(f"{URL}/{reference}{suffix}", json=body, headers=headers)
        assert response.status_code == 401, headers
        assert error(response)["code"] == "unauthorized"
        assert response.headers["WWW-Authenticate"] == "Bearer"
    db.session.remove()
    assert stored(reference).status == "routed"


def test_an_admin_may_correct(client, app_context, admin: Caller):
    reference = routed_request(client)
    response = patch(client, admin, reference, {"full_name": "Marie Dupont"})
    assert response.status_code == 200
    assert events(reference, "corrected")[0].actor == f"user:{admin.email}"


def test_the_openapi_documents_corrections_outcomes_and_reopening(client):
    spec = client.get("/openapi.json").get_json()
    item = spec["paths"]["/api/v1/quote-requests/{reference}"]
    assert {"get", "patch"} <= set(item)
    assert {"409", "412", "422", "401"} <= set(item["patch"]["responses"])
    assert item["patch"]["security"] == [{"coordinatorToken": []}]
    reopen_op = spec["paths"]["/api/v1/quote-requests/{reference}/reopen"]["post"]
    assert "reopen_too_late" in reopen_op["responses"]["409"]["description"]
    schemas = spec["components"]["schemas"]
    correction = schemas["CorrectionIn"]
    assert set(correction["properties"]) == {
        "full_name",
        "email",
        "phone",
        "preferred_language",
        "travel_from",
        "travel_to",
        "note",
        "version",
    }
    assert correction.get("required", []) == []
    assert "default" not in correction["properties"]["preferred_language"]  # nothing sent stays
    assert correction["properties"]["phone"]["nullable"] is True
    assert correction["additionalProperties"] is False
    assert schemas["TransitionIn"]["properties"]["outcome"]["enum"] == OUTCOMES
    assert schemas["ReopenIn"]["required"] == ["reason"]
    assert "outcome" in schemas["QueueItem"]["properties"]
