"""The patient's link as JSON: their request, interest in a quote, withdrawal, privacy requests."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest
import redis
from cryptography.fernet import Fernet
from flask import Flask
from flask.testing import FlaskClient

from quote_service.crypto import LINK_TOKEN_PATTERN, Keyring
from quote_service.errors import NotFound
from quote_service.extensions import db
from quote_service.models import (
    ClinicQuote,
    Invitation,
    Notification,
    OutboxMessage,
    PrivacyRequest,
    QuoteRequest,
)
from quote_service.services import patient_tokens
from quote_service.services.privacy_requests import one_month_after
from tests.conftest import base_config
from tests.patient_fixtures import (
    EMAIL,
    PATIENT_API,
    events_of,
    fan_out,
    notifications_of,
    routed,
    text_of,
    token,
    with_quotes,
)
from tests.routing_fixtures import submit
from tests.support.servers import Server

COORDINATORS = "coordinators@quote-service.example"


fan_out_to_two = fan_out(2)


def error_code(response) -> str:
    return response.get_json()["error"]["code"]


# --- The token ------------------------------------------------------------------


def test_intake_gives_each_request_a_256_bit_token_stored_only_as_its_hash(portugal):
    portugal("a")
    request = submit(full_name="Ana Sousa", email=EMAIL)
    secret = token(request)
    assert LINK_TOKEN_PATTERN.fullmatch(secret)  # 43 url-safe characters: 256 bits
    assert request.patient_token_hash == hashlib.sha256(secret.encode()).hexdigest()
    row = db.session.execute(
        db.text("SELECT * FROM quote_request WHERE id = :id"), {"id": request.id}
    ).one()
    assert secret not in repr(tuple(row))
    payloads = [str(m.payload) for m in db.session.execute(db.select(OutboxMessage)).scalars()]
    assert payloads and all(secret not in p for p in payloads)
    other = submit(full_name="Jan Peeters", email="jan@example.org")
    assert token(other) != secret


def test_the_acknowledgement_carries_the_link_and_says_what_it_is_for(app, portugal):
    request = routed(portugal)
    [ack] = notifications_of(request, "acknowledgement")
    text = text_of(ack)
    link = f"{app.config['PUBLIC_BASE_URL']}/p/{token(request)}"
    assert text.count(link) == 3  # the plain text once, the HTML's href and its text
    assert "On your page you can follow your request, see the quotes we send you" in text


@pytest.mark.parametrize(
    ("language", "sentence"),
    [
        ("fr", "Sur votre page, vous pouvez suivre votre demande"),
        ("nl", "Op uw pagina kunt u uw aanvraag volgen"),
        ("de", "Auf Ihrer Seite können Sie Ihre Anfrage verfolgen"),
    ],
)
def test_the_acknowledgement_says_it_in_the_patients_language(portugal, language, sentence):
    request = routed(portugal, preferred_language=language)
    [ack] = notifications_of(request, "acknowledgement")
    text = text_of(ack)
    assert f"/p/{token(request)}" in text
    assert sentence in text


def test_the_quote_email_carries_the_link_too(client: FlaskClient, coordinator, portugal):
    request, _, _ = with_quotes(client, coordinator, portugal)
    [email] = notifications_of(request, "quotes")
    assert f"/p/{token(request)}" in text_of(email)


# --- GET ------------------------------------------------------------------------


def test_the_patient_reads_their_request_and_only_the_quotes_sent(
    client: FlaskClient, coordinator, portugal
):
    request, sent, not_sent = with_quotes(client, coordinator, portugal)
    response = client.get(f"{PATIENT_API}/{token(request)}")
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {
        "reference",
        "status",
        "created_at",
        "condition",
        "destination",
        "clinics",
        "quotes",
        "consent",
    }
    assert (body["reference"], body["status"]) == (request.reference, "quoted")
    assert (body["condition"], body["destination"]) == ("stroke", "PT")
    assert body["clinics"] == ["a clinic", "b clinic"]
    [quote] = body["quotes"]
    assert quote["id"] == sent and not_sent not in [q["id"] for q in body["quotes"]]
    assert quote["clinic"] == "a clinic"
    assert (quote["price_min"], quote["price_max"], quote["currency"]) == ("12000.00", None, "EUR")
    assert quote["includes"] == [{"slug": "treatment", "name": "The treatment itself"}]
    assert quote["evidence"] == "clinical-trial" and quote["trial_id"] == "NCT01234567"
    assert quote["doctor"] == "Dr. M. Costa" and quote["notes"] == "Two follow-up visits."
    assert quote["valid_until"] and quote["interested"] is False
    consent = body["consent"]
    assert consent["version"] == request.consent_version
    assert consent["given_at"] and consent["withdrawn_at"] is None
    assert "ana" not in response.get_data(as_text=True).lower()  # no name, no email


def test_a_token_shows_only_its_own_request(client: FlaskClient, coordinator, portugal):
    request, _, _ = with_quotes(client, coordinator, portugal)
    other = submit(full_name="Jan Peeters", email="jan@example.org")
    body = client.get(f"{PATIENT_API}/{token(other)}").get_json()
    assert body["reference"] == other.reference != request.reference
    assert body["quotes"] == [] and body["status"] == "received"


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # one character altered
        lambda t: t[:-1],  # shortened
        lambda t: t + "x",  # lengthened
        lambda t: "x" * 43,  # well formed, unknown
    ],
)
def test_an_unknown_or_altered_token_is_a_404_everywhere(client: FlaskClient, portugal, mangle):
    request = routed(portugal)
    bad = mangle(token(request))
    for method, path, body in (
        ("get", "", None),
        ("post", "/interest", {"quote_id": 1}),
        ("post", "/withdrawal", {}),
        ("post", "/privacy-requests", {"kind": "copy"}),
    ):
        response = getattr(client, method)(f"{PATIENT_API}/{bad}{path}", json=body)
        assert response.status_code == 404, path
        assert error_code(response) == "not_found"
        assert set(response.get_json()["error"]) >= {"code", "message"}


# --- Interest -------------------------------------------------------------------


def test_interest_records_an_event_and_tells_the_coordinators_once(
    client: FlaskClient, coordinator, portugal
):
    request, sent, _ = with_quotes(client, coordinator, portugal)
    for _ in range(2):
        response = client.post(f"{PATIENT_API}/{token(request)}/interest", json={"quote_id": sent})
        assert response.status_code == 200
        assert response.get_json() == {
            "reference": request.reference,
            "quote_id": sent,
            "interested": True,
        }
    db.session.expire_all()
    [event] = events_of(request, "patient_interest")
    assert event.actor == "patient" and event.data["quote_id"] == sent
    [alert] = notifications_of(request, "interest_alert")
    assert alert.recipient == COORDINATORS and alert.status == "pending"
    body = client.get(f"{PATIENT_API}/{token(request)}").get_json()
    assert body["quotes"][0]["interested"] is True


def test_interest_in_a_quote_not_sent_to_this_patient_is_a_422_with_its_code(
    client: FlaskClient, coordinator, portugal
):
    request, _, not_sent = with_quotes(client, coordinator, portugal)
    other, other_sent, _ = with_quotes(
        client, coordinator, portugal, add_clinics=False, email="jan@example.org"
    )
    for quote_id in (not_sent, other_sent, 999_999):
        response = client.post(
            f"{PATIENT_API}/{token(request)}/interest", json={"quote_id": quote_id}
        )
        assert response.status_code == 422, quote_id
        assert error_code(response) == "quote_not_offered"
        assert "quote_id" in response.get_json()["error"]["fields"]
    assert events_of(request, "patient_interest") == []
    assert notifications_of(request, "interest_alert") == []


@pytest.mark.parametrize("body", [{}, {"quote_id": "one"}, {"quote_id": 0}, {"quote_id": 1.5}])
def test_a_bad_interest_body_is_a_422(client: FlaskClient, portugal, body):
    request = routed(portugal)
    response = client.post(f"{PATIENT_API}/{token(request)}/interest", json=body)
    assert response.status_code == 422
    assert error_code(response) == "validation_error"
    assert "quote_id" in response.get_json()["error"]["fields"]


# --- Withdrawal -----------------------------------------------------------------


def test_withdrawal_stops_everything_and_a_second_one_is_a_409(
    client: FlaskClient, coordinator, portugal
):
    request, sent, not_sent = with_quotes(client, coordinator, portugal)
    pending_before = [n.id for n in db.session.execute(db.select(Notification)).scalars()]
    assert pending_before
    response = client.post(f"{PATIENT_API}/{token(request)}/withdrawal")
    assert response.status_code == 200
    body = response.get_json()
    assert (body["reference"], body["status"]) == (request.reference, "withdrawn")
    assert body["consent"]["withdrawn_at"] is not None
    db.session.expire_all()
    request = db.session.get_one(QuoteRequest, request.id)
    assert request.status == "withdrawn" and request.consent_withdrawn_at is not None
    # Pending emails and invitations cancelled, nothing more sent.
    statuses = {
        n.status
        for n in db.session.execute(
            db.select(Notification).where(Notification.quote_request_id == request.id)
        ).scalars()
    }
    assert "pending" not in statuses
    assert all(
        m.completed_at is not None for m in db.session.execute(db.select(OutboxMessage)).scalars()
    )
    assert db.session.get_one(ClinicQuote, not_sent).status == "withdrawn"
    invitations_left = db.session.execute(
        db.select(Invitation).where(Invitation.status == "open")
    ).all()
    assert invitations_left == []
    [event] = events_of(request, "withdrawn")
    assert event.actor == "patient" and event.data["previous"] == "quoted"

    again = client.post(f"{PATIENT_API}/{token(request)}/withdrawal", json={})
    assert again.status_code == 409
    assert error_code(again) == "already_withdrawn"
    late = client.post(f"{PATIENT_API}/{token(request)}/interest", json={"quote_id": sent})
    assert late.status_code == 409 and error_code(late) == "request_closed"
    # The page still answers: the patient can read what happened.
    assert client.get(f"{PATIENT_API}/{token(request)}").get_json()["status"] == "withdrawn"


def test_a_withdrawal_before_routing_cancels_the_routing(client: FlaskClient, portugal):
    portugal("a")
    request = submit(full_name="Ana Sousa", email=EMAIL)
    response = client.post(f"{PATIENT_API}/{token(request)}/withdrawal")
    assert response.status_code == 200
    db.session.expire_all()
    [row] = list(db.session.execute(db.select(OutboxMessage)).scalars())
    assert row.completed_at is not None  # the worker will not route nor acknowledge it


def test_a_withdrawal_with_unknown_fields_is_a_422(client: FlaskClient, portugal):
    request = routed(portugal)
    response = client.post(f"{PATIENT_API}/{token(request)}/withdrawal", json={"why": "x"})
    assert response.status_code == 422 and error_code(response) == "validation_error"


# --- Privacy requests -----------------------------------------------------------


def test_a_privacy_request_is_recorded_due_in_a_month_and_alerted(client: FlaskClient, portugal):
    request = routed(portugal)
    response = client.post(
        f"{PATIENT_API}/{token(request)}/privacy-requests", json={"kind": "copy"}
    )
    assert response.status_code == 202
    body = response.get_json()
    assert (body["kind"], body["status"]) == ("copy", "open")
    requested = datetime.fromisoformat(body["requested_at"])
    assert datetime.fromisoformat(body["due_at"]) == one_month_after(requested)
    db.session.expire_all()
    [row] = list(db.session.execute(db.select(PrivacyRequest)).scalars())
    assert row.quote_request_id == request.id and row.id == body["id"]
    [event] = events_of(request, "privacy_requested")
    assert event.actor == "patient" and event.data["kind"] == "copy"
    [alert] = notifications_of(request, "privacy_request_alert")
    assert alert.recipient == COORDINATORS and alert.status == "pending"
    assert request.reference in alert.subject and "copy" in alert.subject
    # Asking again while it is open: the same request, no second alert.
    again = client.post(f"{PATIENT_API}/{token(request)}/privacy-requests", json={"kind": "copy"})
    assert again.status_code == 202 and again.get_json()["id"] == body["id"]
    assert len(notifications_of(request, "privacy_request_alert")) == 1


@pytest.mark.parametrize("body", [{}, {"kind": "delete"}, {"kind": ""}, {"kind": 1}])
def test_a_bad_privacy_request_kind_is_a_422(client: FlaskClient, portugal, body):
    request = routed(portugal)
    response = client.post(f"{PATIENT_API}/{token(request)}/privacy-requests", json=body)
    assert response.status_code == 422
    assert error_code(response) == "validation_error"
    assert "kind" in response.get_json()["error"]["fields"]
    assert db.session.execute(db.select(PrivacyRequest)).first() is None


@pytest.mark.parametrize(
    ("moment", "due"),
    [
        (datetime(2027, 1, 31, 9, 30, tzinfo=UTC), datetime(2027, 2, 28, 9, 30, tzinfo=UTC)),
        (datetime(2028, 1, 31, 9, 30, tzinfo=UTC), datetime(2028, 2, 29, 9, 30, tzinfo=UTC)),
        (datetime(2026, 12, 15, 0, 0, tzinfo=UTC), datetime(2027, 1, 15, 0, 0, tzinfo=UTC)),
    ],
)
def test_one_month_is_a_calendar_month(moment, due):
    assert one_month_after(moment) == due


def test_admins_list_privacy_requests_with_due_date_and_status(
    client: FlaskClient, portugal, admin, coordinator
):
    request = routed(portugal)
    for kind in ("erasure", "copy"):
        client.post(f"{PATIENT_API}/{token(request)}/privacy-requests", json={"kind": kind})
    response = client.get("/api/v1/privacy/requests", headers=admin.headers)
    assert response.status_code == 200
    items = response.get_json()["items"]
    assert [i["kind"] for i in items] == ["erasure", "copy"]  # soonest due first
    assert all(i["reference"] == request.reference and i["status"] == "open" for i in items)
    assert all(i["due_at"] and i["overdue"] is False and i["fulfilled_at"] is None for i in items)
    assert client.get("/api/v1/privacy/requests", headers=coordinator.headers).status_code == 403
    assert client.get("/api/v1/privacy/requests").status_code == 401
    unknown = client.get("/api/v1/privacy/requests?sort=due", headers=admin.headers)
    assert unknown.status_code == 422
    bad = client.get("/api/v1/privacy/requests?status=late", headers=admin.headers)
    assert bad.status_code == 422


def test_the_export_and_the_erasure_fulfil_them_and_an_erased_token_is_a_404(
    client: FlaskClient, coordinator, portugal, admin
):
    request, _, _ = with_quotes(client, coordinator, portugal)
    secret = token(request)
    for kind in ("copy", "erasure"):
        client.post(f"{PATIENT_API}/{secret}/privacy-requests", json={"kind": kind})

    exported = client.post("/api/v1/privacy/export", json={"email": EMAIL}, headers=admin.headers)
    assert exported.status_code == 200
    [entry] = exported.get_json()["quote_requests"]
    assert not [key for key in entry if key.startswith("patient_token")]
    items = client.get("/api/v1/privacy/requests", headers=admin.headers).get_json()["items"]
    assert {i["kind"]: i["status"] for i in items} == {"copy": "fulfilled", "erasure": "open"}
    fulfilled = [i for i in items if i["kind"] == "copy"][0]
    assert fulfilled["fulfilled_by"] == f"user:{admin.email}" and fulfilled["fulfilled_at"]

    erased = client.post("/api/v1/privacy/erasure", json={"email": EMAIL}, headers=admin.headers)
    assert erased.status_code == 200 and erased.get_json()["erased"] == 1
    open_ones = client.get(
        "/api/v1/privacy/requests?status=open", headers=admin.headers
    ).get_json()["items"]
    assert open_ones == []
    for method, path, body in (
        ("get", "", None),
        ("post", "/withdrawal", {}),
        ("post", "/privacy-requests", {"kind": "copy"}),
    ):
        response = getattr(client, method)(f"{PATIENT_API}/{secret}{path}", json=body)
        assert response.status_code == 404, path
        assert error_code(response) == "not_found"
    assert client.get(f"/p/{secret}").status_code == 404
    db.session.expire_all()
    with pytest.raises(NotFound):
        patient_tokens.find(secret)


# --- Contract -------------------------------------------------------------------


def test_the_endpoints_are_in_the_openapi(client: FlaskClient):
    spec = client.get("/openapi.json").get_json()
    paths = spec["paths"]
    assert set(paths["/api/v1/patient/{token}"]) >= {"get"}
    for action in ("interest", "withdrawal", "privacy-requests"):
        operation = paths[f"/api/v1/patient/{{token}}/{action}"]["post"]
        assert "404" in operation["responses"] and "429" in operation["responses"]
    assert "202" in paths["/api/v1/patient/{token}/privacy-requests"]["post"]["responses"]
    assert "409" in paths["/api/v1/patient/{token}/withdrawal"]["post"]["responses"]
    assert "get" in paths["/api/v1/privacy/requests"]


def test_posts_on_a_link_are_rate_limited(
    postgres: Server, redis_server: Server, app, make_app, portugal
):
    with redis.Redis.from_url(redis_server.url) as connection:
        connection.flushdb()
    limited = make_app(
        base_config(postgres.url, REDIS_URL=redis_server.url, RATE_LIMIT_PATIENT_LINK="2/minute")
    )
    request = routed(portugal)
    secret = token(request)
    client = limited.test_client()
    url = f"{PATIENT_API}/{secret}/privacy-requests"
    statuses = [client.post(url, json={"kind": "copy"}).status_code for _ in range(3)]
    assert statuses == [202, 202, 429]
    refused = client.post(url, json={"kind": "copy"})
    assert error_code(refused) == "rate_limited" and int(refused.headers["Retry-After"]) > 0
    assert client.get(f"{PATIENT_API}/{secret}").status_code == 200  # reading is not limited


def test_a_closed_request_withdrawn_by_its_patient_cannot_be_moved_again(
    client: FlaskClient, coordinator, portugal
):
    request, _, _ = with_quotes(client, coordinator, portugal)
    closed = client.post(
        f"/api/v1/quote-requests/{request.reference}/transitions",
        json={"to": "closed", "outcome": "booked"},
        headers=coordinator.headers,
    )
    assert closed.status_code == 200
    response = client.post(f"{PATIENT_API}/{token(request)}/withdrawal")
    assert response.status_code == 200 and response.get_json()["status"] == "withdrawn"
    db.session.expire_all()
    [event] = events_of(request, "withdrawn")
    assert event.data["previous"] == "closed"
    for to in ("in_review", "quoted", "closed"):
        moved = client.post(
            f"/api/v1/quote-requests/{request.reference}/transitions",
            json={"to": to},
            headers=coordinator.headers,
        )
        assert moved.status_code == 409, to
        assert moved.get_json()["error"]["code"] == "transition_not_allowed", to


def test_a_link_whose_key_was_retired_is_replaced_by_the_next_email(app: Flask, portugal):
    request = routed(portugal)
    old = token(request)
    keyring = app.extensions["keyring"]
    app.extensions["keyring"] = Keyring([Fernet.generate_key().decode()])
    try:
        new = token(request)  # what the next email to the patient carries
        assert new != old
        assert request.patient_token_hash == hashlib.sha256(new.encode()).hexdigest()
    finally:
        app.extensions["keyring"] = keyring
        db.session.rollback()
