"""Clinic quotes through the API: invitations, the clinic's answers, sending quotes, fallback."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.datastructures import MultiDict

from quote_service.crypto import token_hash
from quote_service.extensions import db
from quote_service.models import (
    ClinicQuote,
    Invitation,
    Notification,
    QuoteRequest,
    utcnow,
)
from quote_service.services import invitations, pipeline, privacy
from tests.patient_fixtures import events_of, fan_out, invited, text_of
from tests.routing_fixtures import received_row, submit

API = "/api/v1/clinic/invitations"


fan_out_to_three = fan_out(3)


def routed(portugal: Any, clinics: int = 4, **overrides: Any) -> QuoteRequest:
    """A PT request routed among `clinics` clinics (a-clinic ranked first: highest weight)."""
    for index in range(clinics):
        portugal(f"{chr(ord('a') + index)}", weight=10 - index)
    request = submit(
        full_name="Ana Sousa",
        email="ana.sousa@example.org",
        phone="+351 912 345 678",
        message="Stroke last year; weak right hand.",
        **overrides,
    )
    pipeline.process_received(received_row(request).id)
    return db.session.get_one(QuoteRequest, request.id)


def token_of(invitation: Invitation) -> str:
    return invitations.link_token(invitation)


def quote_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "price_min": 12500,
        "price_max": 15000.5,
        "currency": "eur",
        "includes": ["treatment", "hospital-stay"],
        "excludes": ["flights"],
        "valid_until": (date.today() + timedelta(days=60)).isoformat(),
        "earliest_start": (date.today() + timedelta(days=30)).isoformat(),
        "doctor": "Dr. M. Costa",
        "evidence": "clinical-trial",
        "trial_id": "NCT01234567",
        "notes": "Includes two follow-up visits.",
    }
    body.update(overrides)
    return {key: value for key, value in body.items() if value is not None}


def notifications_of(request: QuoteRequest, kind: str) -> list[Notification]:
    return list(
        db.session.execute(
            db.select(Notification)
            .where(Notification.quote_request_id == request.id, Notification.kind == kind)
            .order_by(Notification.id)
        ).scalars()
    )


# --- Routing invites the ranked clinics ------------------------------------------


def test_routing_invites_the_first_quote_fanout_ranked_clinics(portugal):
    request = routed(portugal, clinics=4)
    rows = invited(request)
    assert [i.provider.slug for i in rows] == ["a", "b", "c"]
    assert [i.rank for i in rows] == [1, 2, 3]
    assert request.provider_id == rows[0].provider_id
    assert all(i.status == "open" for i in rows)
    assert len(notifications_of(request, "provider")) == 3
    assert len(events_of(request, "invitation_sent")) == 3


def test_invitation_emails_carry_their_own_link_and_no_contact_details(app, portugal):
    request = routed(portugal, clinics=3)
    emails = notifications_of(request, "provider")
    links = set()
    for email, invitation in zip(emails, invited(request), strict=True):
        link = f"{app.config['PUBLIC_BASE_URL']}/clinic/invitations/{token_of(invitation)}"
        assert link in text_of(email)
        links.add(link)
        for personal in ("Ana", "Sousa", "ana.sousa", "912 345 678", "351912345678"):
            assert personal not in text_of(email)
    assert len(links) == 3


def test_tokens_are_stored_only_as_hashes(portugal):
    request = routed(portugal, clinics=1)
    [invitation] = invited(request)
    token = token_of(invitation)
    assert len(token) >= 43  # 256 bits, url-safe base64
    assert invitation.token_hash == token_hash(token)
    row = db.session.execute(db.select(Invitation.__table__)).one()
    assert token not in [str(value) for value in row]


# --- The clinic reads its invitation ---------------------------------------------


def test_a_clinic_reads_the_minimum_it_needs(client: FlaskClient, portugal):
    request = routed(portugal, clinics=1)
    [invitation] = invited(request)
    response = client.get(f"{API}/{token_of(invitation)}")
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {
        "reference",
        "status",
        "respond_by",
        "condition",
        "treatment",
        "destination",
        "preferred_language",
        "patient_age",
        "travel_from",
        "travel_to",
        "message",
    }
    assert (body["reference"], body["status"], body["condition"]) == (
        request.reference,
        "open",
        "stroke",
    )
    text = response.get_data(as_text=True)
    # The phone as typed and as stored (E.164); "912" alone can occur in a timestamp.
    for personal in ("Ana", "Sousa", "ana.sousa", "912 345 678", "351912345678"):
        assert personal not in text


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # one character altered
        lambda t: t[:-1],  # shortened
        lambda t: t + "x",  # lengthened
        lambda t: "x" * 43,  # well formed, unknown
    ],
)
def test_an_altered_or_unknown_token_is_a_404(client: FlaskClient, portugal, mangle):
    [invitation] = invited(routed(portugal, clinics=1))
    token = mangle(token_of(invitation))
    for method, path, body in (
        ("get", "", None),
        ("post", "/quote", quote_body()),
        ("post", "/decline", {"reason": "other"}),
    ):
        response = getattr(client, method)(f"{API}/{token}{path}", json=body)
        assert response.status_code == 404, path
        assert response.get_json()["error"]["code"] == "not_found"
    assert client.get(f"/clinic/invitations/{token}").status_code == 404


# --- The clinic quotes -----------------------------------------------------------


def test_a_quote_is_stored_then_replaced_until_it_is_sent(client: FlaskClient, portugal):
    request = routed(portugal, clinics=1)
    [invitation] = invited(request)
    url = f"{API}/{token_of(invitation)}/quote"

    first = client.post(url, json=quote_body())
    assert first.status_code == 201
    assert first.get_json() == {"quote_id": first.get_json()["quote_id"], "status": "submitted"}
    quote = db.session.get_one(ClinicQuote, first.get_json()["quote_id"])
    assert (quote.price_min, quote.price_max, quote.currency) == (
        Decimal("12500.00"),
        Decimal("15000.50"),
        "EUR",
    )
    assert quote.includes == ["treatment", "hospital-stay"]
    assert db.session.get_one(Invitation, invitation.id).status == "quoted"

    second = client.post(url, json=quote_body(price_min="9000", price_max=None))
    assert second.status_code == 200
    assert second.get_json()["quote_id"] == quote.id
    db.session.expire_all()
    assert db.session.execute(db.select(db.func.count(ClinicQuote.id))).scalar() == 1
    quote = db.session.get_one(ClinicQuote, quote.id)
    assert (quote.price_min, quote.price_max) == (Decimal("9000.00"), None)
    assert [e.type for e in request.events if e.type.startswith("quote_")] == [
        "quote_submitted",
        "quote_replaced",
    ]

    quote.status = "sent"
    db.session.commit()
    third = client.post(url, json=quote_body())
    assert third.status_code == 409
    assert third.get_json()["error"]["code"] == "quote_already_sent"


def test_a_form_post_with_checkboxes_is_a_quote_too(client: FlaskClient, portugal):
    [invitation] = invited(routed(portugal, clinics=1))
    body = quote_body(includes=None, excludes=None, price_max=None)
    form = [(key, str(value)) for key, value in body.items()]
    form += [("includes", "treatment"), ("includes", "consultation"), ("excludes", "flights")]
    response = client.post(f"{API}/{token_of(invitation)}/quote", data=MultiDict(form))
    assert response.status_code == 201
    quote = db.session.get_one(ClinicQuote, response.get_json()["quote_id"])
    assert quote.includes == ["treatment", "consultation"]
    assert quote.excludes == ["flights"]


def past() -> str:
    return (date.today() - timedelta(days=2)).isoformat()


BAD_QUOTES = [
    ({"price_min": None}, "price_min"),
    ({"price_min": 0}, "price_min"),
    ({"price_min": -10}, "price_min"),
    ({"price_min": "12 500"}, "price_min"),
    ({"price_min": "1e3"}, "price_min"),
    ({"price_min": 12.345}, "price_min"),
    ({"price_min": True}, "price_min"),
    ({"price_min": 10**12}, "price_min"),
    ({"price_min": "NaN"}, "price_min"),
    ({"price_max": 100}, "price_max"),
    ({"currency": None}, "currency"),
    ({"currency": "EURO"}, "currency"),
    ({"currency": "XYZ"}, "currency"),
    ({"includes": ["caviar"]}, "includes"),
    ({"includes": "treatment;drop"}, "includes"),
    ({"excludes": ["treatment"]}, "excludes"),
    ({"valid_until": None}, "valid_until"),
    ({"valid_until": past()}, "valid_until"),
    ({"valid_until": "31/03/2027"}, "valid_until"),
    ({"earliest_start": "soon"}, "earliest_start"),
    ({"evidence": None}, "evidence"),
    ({"evidence": "proven"}, "evidence"),
    ({"trial_id": None}, "trial_id"),
    ({"trial_id": "NCT123"}, "trial_id"),
    ({"notes": "x" * 2001}, "notes"),
    ({"doctor": "Dr\x00Who"}, "doctor"),
    ({"patient_email": "x@example.org"}, "patient_email"),
]


@pytest.mark.parametrize(("change", "field"), BAD_QUOTES)
def test_each_bad_quote_field_is_a_422_that_stores_nothing(
    client: FlaskClient, portugal, change, field
):
    request = routed(portugal, clinics=1)
    [invitation] = invited(request)
    response = client.post(f"{API}/{token_of(invitation)}/quote", json=quote_body(**change))
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "validation_error"
    assert field in error["fields"]
    db.session.expire_all()
    assert db.session.execute(db.select(db.func.count(ClinicQuote.id))).scalar() == 0
    assert db.session.get_one(Invitation, invitation.id).status == "open"
    assert events_of(request, "quote_submitted") == []


def test_an_eu_ct_number_is_a_trial_id_too(client: FlaskClient, portugal):
    [invitation] = invited(routed(portugal, clinics=1))
    response = client.post(
        f"{API}/{token_of(invitation)}/quote", json=quote_body(trial_id="2023-503456-12-00")
    )
    assert response.status_code == 201


# --- Declining, expiry, fallback -------------------------------------------------


def test_a_decline_brings_in_the_next_ranked_clinic(client: FlaskClient, portugal):
    request = routed(portugal, clinics=4)
    first = invited(request)[0]
    response = client.post(
        f"{API}/{token_of(first)}/decline", json={"reason": "no-capacity", "note": "Full"}
    )
    assert response.status_code == 200
    assert response.get_json() == {"reference": request.reference, "status": "declined"}
    db.session.expire_all()
    rows = invited(request)
    assert [(i.provider.slug, i.status) for i in rows] == [
        ("a", "declined"),
        ("b", "open"),
        ("c", "open"),
        ("d", "open"),
    ]
    assert rows[0].decline_reason == "no-capacity"
    assert len(notifications_of(request, "provider")) == 4

    again = client.post(f"{API}/{token_of(first)}/quote", json=quote_body())
    assert again.status_code == 409
    assert again.get_json()["error"]["code"] == "invitation_answered"


def test_a_clinic_that_quoted_cannot_decline(client: FlaskClient, portugal):
    [invitation] = invited(routed(portugal, clinics=1))
    client.post(f"{API}/{token_of(invitation)}/quote", json=quote_body())
    response = client.post(f"{API}/{token_of(invitation)}/decline", json={"reason": "other"})
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "invitation_answered"


@pytest.mark.parametrize("body", [{}, {"reason": "bored"}, {"reason": "other", "x": 1}])
def test_a_bad_decline_is_a_422(client: FlaskClient, portugal, body):
    [invitation] = invited(routed(portugal, clinics=1))
    response = client.post(f"{API}/{token_of(invitation)}/decline", json=body)
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "validation_error"
    assert db.session.get_one(Invitation, invitation.id).status == "open"


def test_the_sweep_reminds_once_at_half_time(portugal):
    request = routed(portugal, clinics=1)
    [invitation] = invited(request)
    invitation.remind_at = utcnow() - timedelta(seconds=1)
    db.session.commit()

    assert invitations.sweep() == {"reminded": 1, "expired": 0}
    assert invitations.sweep() == {"reminded": 0, "expired": 0}
    [reminder] = notifications_of(request, "invitation_reminder")
    assert token_of(invitation) in text_of(reminder)
    assert reminder.recipient == invitation.provider.contact_email


def test_an_expired_invitation_answers_410_and_the_next_clinic_is_invited(
    client: FlaskClient, portugal, app
):
    app.config["QUOTE_FANOUT"] = 1
    request = routed(portugal, clinics=2)
    [first] = invited(request)
    first.respond_by = utcnow() - timedelta(seconds=1)
    db.session.commit()

    assert invitations.sweep()["expired"] == 1
    db.session.expire_all()
    rows = invited(request)
    assert [(i.provider.slug, i.status) for i in rows] == [("a", "expired"), ("b", "open")]
    assert len(events_of(request, "invitation_expired")) == 1
    for method, path, body in (
        ("get", "", None),
        ("post", "/quote", quote_body()),
        ("post", "/decline", {"reason": "other"}),
    ):
        response = getattr(client, method)(f"{API}/{token_of(first)}{path}", json=body)
        assert response.status_code == 410, path
        assert response.get_json()["error"]["code"] == "invitation_closed"
    assert client.get(f"/clinic/invitations/{token_of(first)}").status_code == 410


def test_coordinators_are_alerted_once_when_no_clinic_is_left(portugal):
    request = routed(portugal, clinics=2)
    for invitation in invited(request):
        invitation.respond_by = utcnow() - timedelta(seconds=1)
    db.session.commit()

    assert invitations.sweep()["expired"] == 2
    assert invitations.sweep()["expired"] == 0
    [alert] = notifications_of(request, "no_quotes_alert")
    assert alert.recipient == "coordinators@quote-service.example"
    assert request.reference in alert.subject
    assert "Ana" not in text_of(alert) and "Stroke last year" not in text_of(alert)


def test_an_ended_request_withdraws_its_open_invitations(
    client: FlaskClient, portugal, coordinator
):
    request = routed(portugal, clinics=2)
    answered, waiting = invited(request)
    client.post(f"{API}/{token_of(answered)}/quote", json=quote_body())
    response = client.post(
        f"/api/v1/quote-requests/{request.reference}/transitions",
        json={"to": "rejected", "note": "Not a candidate", "version": request.version},
        headers=coordinator.headers,
    )
    assert response.status_code == 200
    db.session.expire_all()
    assert db.session.get_one(Invitation, waiting.id).status == "withdrawn"
    assert db.session.get_one(Invitation, answered.id).status == "quoted"
    quote = db.session.execute(db.select(ClinicQuote)).scalar_one()
    assert quote.status == "withdrawn"
    response = client.get(f"{API}/{token_of(waiting)}")
    assert response.status_code == 410
    assert response.get_json()["error"]["code"] == "invitation_closed"


# --- Coordinators send quotes to the patient ------------------------------------


def quoted_request(client: FlaskClient, portugal: Any) -> tuple[QuoteRequest, list[int]]:
    request = routed(portugal, clinics=3)
    a, b, c = invited(request)
    ids = []
    for invitation, price in ((a, 12000), (b, 15000)):
        response = client.post(
            f"{API}/{token_of(invitation)}/quote",
            json=quote_body(price_min=price, price_max=None, currency="EUR"),
        )
        ids.append(response.get_json()["quote_id"])
    client.post(f"{API}/{token_of(c)}/decline", json={"reason": "cannot-treat"})
    return request, ids


def send(client: FlaskClient, coordinator: Any, reference: str, **body: Any):
    return client.post(
        f"/api/v1/quote-requests/{reference}/quotes/send", json=body, headers=coordinator.headers
    )


def test_the_detail_lists_invitations_and_quotes(client: FlaskClient, portugal, coordinator):
    request, ids = quoted_request(client, portugal)
    body = client.get(
        f"/api/v1/quote-requests/{request.reference}", headers=coordinator.headers
    ).get_json()
    assert [(i["provider"]["slug"], i["status"]) for i in body["invitations"]] == [
        ("a", "quoted"),
        ("b", "quoted"),
        ("c", "declined"),
    ]
    assert {"provider", "status", "sent_at", "respond_by", "answered_at"} <= set(
        body["invitations"][0]
    )
    assert [q["id"] for q in body["quotes"]] == ids
    quote = body["quotes"][0]
    assert (quote["price_min"], quote["currency"], quote["status"]) == (
        "12000.00",
        "EUR",
        "submitted",
    )
    assert {"includes", "excludes", "valid_until", "evidence", "trial_id", "notes"} <= set(quote)


def test_sending_quotes_emails_the_patient_side_by_side_and_marks_it_quoted(
    client: FlaskClient, portugal, coordinator
):
    request, ids = quoted_request(client, portugal)
    response = send(client, coordinator, request.reference, quote_ids=ids, note="Both fit")
    assert response.status_code == 200
    assert response.get_json()["status"] == "quoted"
    db.session.expire_all()
    [email] = notifications_of(request, "quotes")
    assert email.recipient == "ana.sousa@example.org"
    assert email.status == "pending"
    keys = {d["key"] for d in email.disclaimers}
    assert {"quotes-are-estimates", "stem-cell-quotes-unproven", "not-medical-advice"} <= keys
    text = text_of(email)
    assert "€12,000.00" in text and "€15,000.00" in text
    assert all(q.status == "sent" for q in db.session.execute(db.select(ClinicQuote)).scalars())
    [event] = events_of(request, "quotes_sent")
    assert event.data["quote_ids"] == ids and event.actor == f"user:{coordinator.email}"


def test_the_acknowledgement_carries_no_quote_only_disclaimer(portugal):
    request = routed(portugal, clinics=1)
    [ack] = notifications_of(request, "acknowledgement")
    assert "quotes-are-estimates" not in {d["key"] for d in ack.disclaimers}


def test_a_quote_of_another_request_or_already_sent_is_a_422(
    client: FlaskClient, portugal, coordinator
):
    request, ids = quoted_request(client, portugal)
    other = submit(email="other@example.org")
    pipeline.process_received(received_row(other).id)
    other_invitation = invited(other)[0]
    other_quote = client.post(
        f"{API}/{token_of(other_invitation)}/quote", json=quote_body()
    ).get_json()["quote_id"]

    response = send(client, coordinator, request.reference, quote_ids=[ids[0], other_quote])
    assert response.status_code == 422
    assert "quote_ids" in response.get_json()["error"]["fields"]
    assert notifications_of(request, "quotes") == []

    assert send(client, coordinator, request.reference, quote_ids=[ids[0]]).status_code == 200
    again = send(client, coordinator, request.reference, quote_ids=[ids[0]])
    assert again.status_code == 422
    assert again.get_json()["error"]["code"] == "validation_error"


@pytest.mark.parametrize("ending", ["rejected", "withdrawn", "spam"])
def test_sending_quotes_for_an_ended_request_is_a_409(
    client: FlaskClient, portugal, coordinator, ending
):
    request, ids = quoted_request(client, portugal)
    request.status = ending
    db.session.commit()
    response = send(client, coordinator, request.reference, quote_ids=ids)
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "request_closed"


@pytest.mark.parametrize(
    "body", [{}, {"quote_ids": []}, {"quote_ids": ["1"]}, {"quote_ids": [0]}, {"x": 1}]
)
def test_a_bad_send_body_is_a_422(client: FlaskClient, portugal, coordinator, body):
    request, _ = quoted_request(client, portugal)
    response = send(client, coordinator, request.reference, **body)
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "validation_error"


def test_sending_quotes_needs_a_coordinator(client: FlaskClient, portugal):
    request, ids = quoted_request(client, portugal)
    response = client.post(
        f"/api/v1/quote-requests/{request.reference}/quotes/send", json={"quote_ids": ids}
    )
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"


def test_a_stale_version_is_refused(client: FlaskClient, portugal, coordinator):
    request, ids = quoted_request(client, portugal)
    response = send(
        client, coordinator, request.reference, quote_ids=ids, version=request.version + 5
    )
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "stale_version"
    assert notifications_of(request, "quotes") == []


# --- Statistics, privacy ---------------------------------------------------------


def test_providers_show_their_response_rate_and_median(client: FlaskClient, portugal, coordinator):
    request = routed(portugal, clinics=3)
    a, b, c = invited(request)
    a.sent_at = utcnow() - timedelta(hours=3)
    db.session.commit()
    client.post(f"{API}/{token_of(a)}/quote", json=quote_body())
    client.post(f"{API}/{token_of(b)}/decline", json={"reason": "other"})
    c.respond_by = utcnow() - timedelta(seconds=1)
    db.session.commit()
    invitations.sweep()

    body = client.get("/api/v1/providers?destination=PT", headers=coordinator.headers).get_json()
    by_slug = {p["slug"]: p for p in body["items"]}
    assert by_slug["a"]["response_rate"] == 1.0
    assert by_slug["a"]["median_response_hours"] == pytest.approx(3, abs=0.05)
    assert by_slug["b"]["response_rate"] == 1.0
    assert by_slug["c"]["response_rate"] == 0.0
    assert by_slug["c"]["median_response_hours"] is None


def test_statistics_give_the_time_to_the_first_quote(client: FlaskClient, portugal, coordinator):
    request = routed(portugal, clinics=1)
    request.created_at = utcnow() - timedelta(hours=2)
    db.session.commit()
    client.post(f"{API}/{token_of(invited(request)[0])}/quote", json=quote_body())
    body = client.get("/api/v1/statistics", headers=coordinator.headers).get_json()
    assert body["median_seconds"]["to_first_quote"] == pytest.approx(7200, abs=60)


def test_export_and_erasure_cover_invitations_and_quotes(client: FlaskClient, portugal):
    request, _ = quoted_request(client, portugal)
    exported = privacy.export_person("ana.sousa@example.org", "admin@example.org", None)
    [entry] = exported["quote_requests"]
    assert [i["status"] for i in entry["invitations"]] == ["quoted", "quoted", "declined"]
    assert [q["price_min"] for q in entry["quotes"]] == ["12000.00", "15000.00"]
    assert entry["quotes"][0]["notes"] == "Includes two follow-up visits."

    privacy.erase_person("ana.sousa@example.org", "admin@example.org", None)
    db.session.expire_all()
    quotes = list(db.session.execute(db.select(ClinicQuote)).scalars())
    assert quotes and all(q.notes is None and q.doctor is None for q in quotes)
    assert all(q.status == "withdrawn" for q in quotes)


def test_a_reroute_to_a_clinic_whose_invitation_ended_reopens_it_with_a_new_link(
    client: FlaskClient, portugal, coordinator
):
    request = routed(portugal, clinics=2)
    first, second = invited(request)
    old_token = token_of(first)
    client.post(f"{API}/{old_token}/decline", json={"reason": "no-capacity"})
    response = client.post(
        f"/api/v1/quote-requests/{request.reference}/route",
        json={"provider_id": first.provider_id, "note": "They have room now."},
        headers=coordinator.headers,
    )
    assert response.status_code == 200, response.get_json()
    db.session.expire_all()
    reopened = db.session.get_one(Invitation, first.id)
    assert reopened.status == "open" and reopened.answered_at is None
    assert client.get(f"{API}/{old_token}").status_code == 404
    assert client.get(f"{API}/{token_of(reopened)}").get_json()["status"] == "open"
    emails = [
        n for n in notifications_of(request, "provider") if n.recipient == "a@clinic.test.example"
    ]
    assert len(emails) == 2
