"""POST /api/v1/quote-requests: what a valid request stores and answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from flask.testing import FlaskClient

from quote_service.extensions import db
from quote_service.models import ConsentText, Event, OutboxMessage, QuoteRequest
from quote_service.services.references import is_reference
from tests.payloads import minimal_body, valid_body

URL = "/api/v1/quote-requests"


def stored(reference: str) -> QuoteRequest:
    return db.session.execute(
        db.select(QuoteRequest).where(QuoteRequest.reference == reference)
    ).scalar_one()


def test_valid_json_request_is_stored_with_event_and_outbox_row(client: FlaskClient, app_context):
    before = datetime.now(UTC)
    response = client.post(URL, json=valid_body())

    assert response.status_code == 201
    body = response.get_json()
    assert set(body) == {"reference", "status", "created_at", "urgent"}
    assert body["urgent"] is False
    assert is_reference(body["reference"])
    assert body["status"] == "received"
    assert datetime.fromisoformat(body["created_at"]) >= before - timedelta(seconds=1)
    assert response.headers["Location"].endswith(f"/api/v1/quote-requests/{body['reference']}")

    request = stored(body["reference"])
    assert request.status == "received"
    assert request.condition_slug == "stroke"
    assert request.destination_code == "BE"
    assert request.treatment_slug == "msc"
    assert request.patient_age == 64
    assert request.budget_eur == 25000
    assert request.message.startswith("Stroke in March")
    events = db.session.execute(db.select(Event)).scalars().all()
    assert [(e.type, e.actor, e.quote_request_id) for e in events] == [
        ("received", "patient", request.id)
    ]
    outbox = db.session.execute(db.select(OutboxMessage)).scalars().all()
    assert [(o.topic, o.payload, o.completed_at) for o in outbox] == [
        (
            "quote_request.received",
            {"quote_request_id": request.id, "request_id": response.headers["X-Request-ID"]},
            None,
        )
    ]


def test_input_is_normalised(client: FlaskClient, app_context):
    response = client.post(
        URL,
        json=valid_body(
            full_name="  Jan Peeters  ",
            email="Jan.Peeters@EXAMPLE.org",
            phone="0470 12 34 56",
            country_of_residence="be",
            destination="be",
        ),
    )
    assert response.status_code == 201, response.get_json()
    request = stored(response.get_json()["reference"])
    assert request.full_name == "Jan Peeters"
    assert request.email == "Jan.Peeters@example.org"
    assert request.phone == "+32470123456"  # national number read in the country of residence
    assert request.country_of_residence == "BE"
    assert request.destination_code == "BE"


def test_optional_fields_take_their_defaults(client: FlaskClient, app_context):
    response = client.post(URL, json=minimal_body())
    assert response.status_code == 201, response.get_json()
    request = stored(response.get_json()["reference"])
    assert request.preferred_language == "en"
    assert request.treatment_slug == "unsure"
    assert request.phone is None
    assert request.message is None
    assert request.consent_marketing is False


def test_consent_is_recorded_with_the_text_version_in_the_patients_language(
    client: FlaskClient, app_context
):
    response = client.post(URL, json=valid_body(preferred_language="fr"))
    request = stored(response.get_json()["reference"])
    newest_fr = (
        db.session.execute(
            db.select(ConsentText)
            .where(ConsentText.language == "fr")
            .order_by(ConsentText.version.desc())
        )
        .scalars()
        .first()
    )
    assert request.consent_privacy is True
    assert (request.consent_language, request.consent_version) == ("fr", newest_fr.version)
    assert abs(request.consented_at - request.created_at) < timedelta(seconds=1)


@pytest.mark.parametrize("checked", ["on", "true", "1", "yes", "YES", "On"])
def test_html_form_post_with_checkbox_values(client: FlaskClient, app_context, checked: str):
    form = {key: str(value) for key, value in valid_body().items() if key != "consent_marketing"}
    form.update(consent_privacy=checked, consent_marketing=checked, phone="", website="")
    response = client.post(URL, data=form)  # application/x-www-form-urlencoded
    assert response.status_code == 201, response.get_json()
    request = stored(response.get_json()["reference"])
    assert request.consent_marketing is True
    assert request.patient_age == 64
    assert request.phone is None  # an empty input is "not given"


def test_form_post_without_the_consent_checkbox_is_refused(client: FlaskClient, app_context):
    form = {key: str(value) for key, value in minimal_body().items() if key != "consent_privacy"}
    response = client.post(URL, data=form)
    assert response.status_code == 422
    assert "consent_privacy" in response.get_json()["error"]["fields"]
    assert db.session.execute(db.select(QuoteRequest)).first() is None


def test_filled_honeypot_answers_like_success_and_queues_nothing(client: FlaskClient, app_context):
    response = client.post(URL, json=valid_body(website="http://spam.example"))
    assert response.status_code == 201
    body = response.get_json()
    assert body["status"] == "received"
    assert "Location" in response.headers
    request = stored(body["reference"])
    assert request.status == "spam"
    assert [e.type for e in request.events] == ["spam"]
    assert db.session.execute(db.select(OutboxMessage)).first() is None


def test_references_are_unique_and_unguessable(client: FlaskClient, app_context):
    # One address each: the same request again would link to the first (test_duplicates).
    bodies = [minimal_body(email=f"patient.{n}@example.org") for n in range(20)]
    references = {client.post(URL, json=body).get_json()["reference"] for body in bodies}
    assert len(references) == 20
    assert all(is_reference(ref) for ref in references)


def test_a_reference_collision_is_retried(client: FlaskClient, app_context, monkeypatch):
    from quote_service.services import intake

    first = client.post(URL, json=minimal_body()).get_json()["reference"]
    candidates = iter([first, first, "QR-ZZZZZZZZ"])
    monkeypatch.setattr(intake, "new_reference", lambda: next(candidates))
    response = client.post(URL, json=minimal_body(email="another.patient@example.org"))
    assert response.status_code == 201
    assert response.get_json()["reference"] == "QR-ZZZZZZZZ"
    assert db.session.execute(db.select(db.func.count(QuoteRequest.id))).scalar() == 2
    assert db.session.execute(db.select(db.func.count(OutboxMessage.id))).scalar() == 2
