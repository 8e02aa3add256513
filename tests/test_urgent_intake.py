"""Urgent symptoms at intake: the 201, the redirect, the flag, the alert, the acknowledgement."""

from __future__ import annotations

from email import message_from_string
from email.policy import default
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import redis
from flask import Flask
from flask.testing import FlaskClient
from markupsafe import escape

from quote_service.extensions import db
from quote_service.mail.rendering import PACKAGE_TEMPLATES
from quote_service.models import Event, Notification, OutboxMessage, QuoteRequest
from quote_service.safety.signs import ruleset
from quote_service.services import pipeline
from tests.conftest import base_config
from tests.payloads import valid_body
from tests.routing_fixtures import received_row, submit
from tests.support.polling import wait_until
from tests.support.servers import Server
from tests.support.smtp import SmtpSink
from tests.test_hosted_form import form_values
from tests.test_worker_pipeline import all_outbox_done, pipeline_app, running_worker

URL = "/api/v1/quote-requests"
SITE = "https://www.clinic-quotes.example"
URGENT_NL = "Mijn vader zijn gezicht hangt scheef sinds vanochtend en hij praat onduidelijk."
URGENT_EN = "My mother's face is drooping and she can't lift her arm, it started an hour ago"
HISTORY_EN = "Weak left arm since my stroke in 2021. No chest pain."


def stored(app: Flask, reference: str) -> QuoteRequest:
    with app.app_context():
        request = db.session.execute(
            db.select(QuoteRequest).where(QuoteRequest.reference == reference)
        ).scalar_one()
        db.session.expunge(request)
        return request


def notifications(app: Flask, kind: str) -> list[Notification]:
    with app.app_context():
        rows = list(
            db.session.execute(db.select(Notification).where(Notification.kind == kind)).scalars()
        )
        db.session.remove()
        return rows


def event_types(app: Flask, reference: str) -> list[str]:
    with app.app_context():
        return list(
            db.session.execute(
                db.select(Event.type)
                .join(QuoteRequest)
                .where(QuoteRequest.reference == reference)
                .order_by(Event.id)
            ).scalars()
        )


def test_an_urgent_message_gets_the_advice_in_the_patient_language(client: FlaskClient, app):
    response = client.post(URL, json=valid_body(message=URGENT_NL, preferred_language="nl"))

    assert response.status_code == 201
    body = response.get_json()
    assert body["urgent"] is True
    assert body["emergency_number"] == "112"
    assert body["advice"].startswith("Dit kan een noodgeval zijn")
    assert "112" in body["advice"]
    request = stored(app, body["reference"])
    assert request.urgent is True
    assert request.safety["version"] == ruleset().version
    assert {rule["id"] for rule in request.safety["rules"]} >= {"stroke-face", "stroke-speech"}
    assert event_types(app, body["reference"]) == ["received", "urgent_flagged"]


def test_the_number_follows_the_country_of_residence(client: FlaskClient):
    def answer(country: str, language: str = "en") -> dict:
        body = valid_body(
            message=URGENT_EN,
            country_of_residence=country,
            preferred_language=language,
            phone=None,
            email=f"patient.{country.lower()}@example.org",
        )
        response = client.post(URL, json=body)
        assert response.status_code == 201
        return response.get_json()

    assert answer("US")["emergency_number"] == "911"
    assert answer("AG")["emergency_number"] == "911"
    uk = answer("GB")
    assert uk["emergency_number"] == "999" and "999 (or 112)" in uk["advice"]
    # Kazakhstan is not in the table: "your local emergency number" and 112.
    unknown = answer("KZ", "de")
    assert unknown["emergency_number"] == "112"
    assert "örtliche Notrufnummer" in unknown["advice"]


def test_a_history_is_not_urgent_and_carries_no_advice(client: FlaskClient, app):
    response = client.post(URL, json=valid_body(message=HISTORY_EN))

    body = response.get_json()
    assert response.status_code == 201
    assert body["urgent"] is False
    assert "advice" not in body and "emergency_number" not in body
    assert stored(app, body["reference"]).urgent is False
    assert notifications(app, "urgent_alert") == []


def test_the_alert_is_recorded_in_the_intake_transaction_without_health_text(
    client: FlaskClient, app
):
    response = client.post(URL, json=valid_body(message=URGENT_EN, preferred_language="en"))
    reference = response.get_json()["reference"]

    [alert] = notifications(app, "urgent_alert")
    assert alert.recipient == "coordinators@quote-service.example"
    assert alert.status == "pending"
    assert alert.subject == f"Urgent: quote request {reference} needs a coordinator now"
    message = message_from_string(alert.mime, policy=default)
    text = message.get_body(("plain",)).get_content()
    assert reference in text
    for health_word in ("face", "drooping", "her arm", "stroke", "Stroke", "Jan Peeters"):
        assert health_word not in alert.subject
        assert health_word not in text
    with app.app_context():
        sends = db.session.execute(
            db.select(OutboxMessage).where(OutboxMessage.topic == "notification.send")
        ).scalars()
        assert alert.id in [row.payload["notification_id"] for row in sends]


def test_a_replayed_idempotent_post_answers_urgent_again(client: FlaskClient, app):
    headers = {"Idempotency-Key": "urgent-replay-1"}
    first = client.post(URL, json=valid_body(message=URGENT_EN), headers=headers)
    again = client.post(URL, json=valid_body(message=URGENT_EN), headers=headers)

    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == first.get_json()
    assert first.get_json()["urgent"] is True
    assert len(notifications(app, "urgent_alert")) == 1


def test_a_resubmission_with_urgent_words_is_flagged_itself_once(client: FlaskClient, app):
    first = client.post(URL, json=valid_body(message=HISTORY_EN)).get_json()
    second = client.post(URL, json=valid_body(message=URGENT_EN)).get_json()

    assert first["urgent"] is False
    # Its own request (held beside the first), answered with the advice at once.
    assert second["reference"] != first["reference"]
    assert second["urgent"] is True and second["advice"]
    assert stored(app, second["reference"]).urgent is True
    assert stored(app, first["reference"]).urgent is False  # its words are the second's
    [alert] = notifications(app, "urgent_alert")
    assert alert.quote_request_id == stored(app, second["reference"]).id
    assert event_types(app, second["reference"]).count("urgent_flagged") == 1
    assert "urgent_flagged" not in event_types(app, first["reference"])


def test_spam_with_urgent_words_is_answered_but_alerts_nobody(client: FlaskClient, app):
    response = client.post(URL, json=valid_body(message=URGENT_EN, website="http://spam.example"))

    assert response.get_json()["urgent"] is True  # looks like any other answer
    assert notifications(app, "urgent_alert") == []


def test_a_form_redirect_adds_urgent_1(app: Flask, postgres: Server, make_app):
    site = make_app(base_config(postgres.url, CORS_ORIGINS=[SITE]))
    fields = {key: str(value) for key, value in valid_body(message=URGENT_EN).items()}
    fields.update(consent_privacy="on", consent_marketing="", redirect_to=f"{SITE}/thanks")

    response = site.test_client().post(URL, data=fields)

    assert response.status_code == 303
    query = parse_qs(urlsplit(response.headers["Location"]).query)
    assert query["urgent"] == ["1"]
    assert query["emergency_number"] == ["112"]
    assert query["reference"][0].startswith("QR-")
    calm = {**fields, "message": HISTORY_EN, "email": "calm@example.org"}
    query = parse_qs(urlsplit(site.test_client().post(URL, data=calm).headers["Location"]).query)
    assert "urgent" not in query


def test_the_worker_sends_the_alert_once_and_the_patient_the_advice_first(
    postgres: Server, redis_server: Server, app: Flask, smtp: SmtpSink, make_app
):
    with redis.Redis.from_url(redis_server.url) as client:
        client.flushdb()
    worker_app = pipeline_app(make_app, postgres.url, redis_server.url, smtp)
    with running_worker(worker_app):
        body = valid_body(message=URGENT_EN, preferred_language="en", email="now@example.org")
        reference = worker_app.test_client().post(URL, json=body).get_json()["reference"]
        assert wait_until(lambda: len(smtp.received) >= 3 and all_outbox_done(worker_app))

    [alert] = smtp.to("coordinators@quote-service.example")
    assert alert.message["Subject"] == f"Urgent: quote request {reference} needs a coordinator now"
    [ack] = smtp.to("now@example.org")
    assert ack.text().lstrip().startswith("!!! This may be an emergency")
    assert len(smtp.received) == 3  # the alert, the acknowledgement, the clinic's email


def parts(notification: Notification) -> tuple[str, str]:
    message = message_from_string(notification.mime, policy=default)
    return (
        message.get_body(("plain",)).get_content(),
        message.get_body(("html",)).get_content(),
    )


def acknowledgement_of(request: QuoteRequest) -> Notification:
    pipeline.process_received(received_row(request).id)
    return db.session.execute(
        db.select(Notification).where(
            Notification.quote_request_id == request.id, Notification.kind == "acknowledgement"
        )
    ).scalar_one()


def test_the_acknowledgement_opens_with_the_advice_in_each_language(app_context, portugal):
    portugal("urgent-ack")
    openings = {
        "en": "This may be an emergency",
        "fr": "Il peut s'agir d'une urgence",
        "nl": "Dit kan een noodgeval zijn",
        "de": "Dies kann ein Notfall sein",
    }
    for number, (language, opening) in enumerate(openings.items()):
        request = submit(
            message=URGENT_EN,
            preferred_language=language,
            country_of_residence="US",
            email=f"ack.{number}@example.org",
        )
        ack = acknowledgement_of(request)
        assert ack.status == "pending"  # the disclaimer guard passed
        text, html = parts(ack)
        first_line = next(line for line in text.splitlines() if line.strip())
        assert opening in first_line and "911" in first_line
        assert html.index(str(escape(opening))) < html.index(request.full_name)
        assert html.index("911") < html.index(request.full_name)


def test_a_calm_acknowledgement_has_no_advice(app_context, portugal):
    portugal("calm-ack")
    text, html = parts(acknowledgement_of(submit(message=HISTORY_EN)))
    assert "This may be an emergency" not in text and "This may be an emergency" not in html


def test_the_disclaimer_guard_still_blocks_an_urgent_acknowledgement(
    postgres: Server, app: Flask, tmp_path: Path, make_app
):
    original = (PACKAGE_TEMPLATES / "acknowledgement.en.txt.j2").read_text(encoding="utf-8")
    broken = original.split("{% for d in disclaimers")[0] + "\n(no disclaimers here)\n"
    (tmp_path / "acknowledgement.en.txt.j2").write_text(broken, encoding="utf-8")
    broken_app = make_app(base_config(postgres.url, MAIL_TEMPLATES_DIR=str(tmp_path)))

    with broken_app.app_context():
        request = submit(
            destination="BE", condition="stroke", preferred_language="en", message=URGENT_EN
        )
        assert request.urgent is True
        ack = acknowledgement_of(request)
        assert ack.status == "blocked"
        text, _ = parts(ack)
        assert text.lstrip().startswith("!!! This may be an emergency")
        db.session.remove()


def test_the_hosted_form_shows_the_advice_of_an_urgent_request(client: FlaskClient, app):
    response = client.post(
        "/form/nl",
        data=form_values(message=URGENT_NL, preferred_language="nl", country_of_residence="BE"),
    )
    assert response.status_code == 303
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Dit kan een noodgeval zijn" in page
    assert page.index('class="urgent"') < page.index('id="success"')
    assert len(notifications(app, "urgent_alert")) == 1
