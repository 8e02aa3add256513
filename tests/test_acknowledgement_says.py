"""What the patient's emails say: only what is true, who we are, disclaimers people can read."""

from __future__ import annotations

from collections.abc import Iterator
from email import message_from_string
from email.policy import default
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from markupsafe import escape

from quote_service.config import ConfigError, from_environment
from quote_service.extensions import db
from quote_service.models import Invitation, Notification, Provider, QuoteRequest
from quote_service.services import pipeline
from quote_service.services.catalog import disclaimers_in_scope
from tests.conftest import Caller
from tests.routing_fixtures import received_row, submit
from tests.test_clinic_quotes import quoted_request, send

ORGANISATION = {
    "ORGANISATION_NAME": "Zeeland Care Travel BV",
    "ORGANISATION_ADDRESS": "Markt 7, 4331 LK Middelburg, Netherlands",
    "CONTACT_EMAIL": "hello@zeeland-care.example",
    "PRIVACY_POLICY_URL": "https://zeeland-care.example/privacy",
}


@pytest.fixture
def organisation(app: Flask) -> Iterator[dict[str, str]]:
    """This deployment's organisation, in place of the samples."""
    before = {key: app.config[key] for key in ORGANISATION}
    app.config.update(ORGANISATION)
    yield ORGANISATION
    app.config.update(before)


@pytest.fixture
def fan_out(app: Flask) -> Iterator[int]:
    app.config["QUOTE_FANOUT"] = 3
    yield 3
    app.config["QUOTE_FANOUT"] = 1


def parts(notification: Notification) -> tuple[str, str]:
    message = message_from_string(notification.mime, policy=default)
    return (
        message.get_body(("plain",)).get_content(),
        message.get_body(("html",)).get_content(),
    )


def acknowledgements(request_id: int) -> list[Notification]:
    return list(
        db.session.execute(
            db.select(Notification)
            .where(
                Notification.quote_request_id == request_id,
                Notification.kind == "acknowledgement",
            )
            .order_by(Notification.id)
        ).scalars()
    )


def processed(**overrides: Any) -> QuoteRequest:
    request = submit(**overrides)
    pipeline.process_received(received_row(request).id)
    return db.session.get_one(QuoteRequest, request.id)


def invited_clinics(request: QuoteRequest) -> list[Provider]:
    return list(
        db.session.execute(
            db.select(Provider)
            .join(Invitation, Invitation.provider_id == Provider.id)
            .where(Invitation.quote_request_id == request.id)
            .order_by(Invitation.rank)
        ).scalars()
    )


# --- 9. Only what is true ------------------------------------------------------


def test_the_acknowledgement_names_each_routed_clinic_and_its_city(
    app: Flask, app_context, fan_out
):
    request = processed(destination="BE", condition="stroke", preferred_language="en")
    clinics = invited_clinics(request)
    assert len(clinics) == 2  # the demo catalog's two Belgian clinics treating stroke
    [ack] = acknowledgements(request.id)
    text, html = parts(ack)
    for clinic in clinics:
        assert clinic.city, "the demo clinics have a city"
        assert f"- {clinic.name} - {clinic.city}, Belgium" in text
        assert f"<strong>{escape(clinic.name)}</strong> – {escape(clinic.city)}, Belgium" in html
    for body in (text, html):
        assert "sent automatically" in body
        assert "A coordinator has passed" not in body
        assert "passed your request" not in body


def test_the_acknowledgement_tells_the_configured_waits_not_a_fixed_promise(
    app: Flask, app_context
):
    before = app.config["SLA_FIRST_RESPONSE_HOURS"], app.config["CLINIC_RESPONSE_HOURS"]
    app.config["SLA_FIRST_RESPONSE_HOURS"], app.config["CLINIC_RESPONSE_HOURS"] = 6, 36.0
    try:
        request = processed(destination="BE", condition="stroke", preferred_language="en")
    finally:
        app.config["SLA_FIRST_RESPONSE_HOURS"], app.config["CLINIC_RESPONSE_HOURS"] = before
    text, html = parts(acknowledgements(request.id)[0])
    for body in (text, html):
        flat = " ".join(body.split())
        assert "Clinics have 36 hours to answer" in flat
        assert "usually reviews your request within 6 hours" in flat
        assert "24 hours" not in flat


def test_an_unroutable_acknowledgement_says_a_coordinator_is_looking(portugal):
    request = processed(destination="PT", condition="stroke", preferred_language="en")
    assert request.status == "unroutable"
    text, html = parts(acknowledgements(request.id)[0])
    for body in (text, html):
        flat = " ".join(body.split())
        assert "has not been sent to a clinic yet" in flat
        assert "A coordinator is looking for a suitable clinic in Portugal." in flat
        assert "sent automatically" not in flat


def test_a_resend_is_a_copy_and_not_the_only_automatic_email(
    client: FlaskClient, app_context, coordinator: Caller
):
    request = processed(destination="BE", condition="stroke", preferred_language="en")
    db.session.remove()
    response = client.post(
        f"/api/v1/quote-requests/{request.reference}/acknowledgement",
        json={},
        headers=coordinator.headers,
    )
    assert response.status_code == 201, response.get_json()
    first, resent = acknowledgements(request.id)
    first_text, first_html = parts(first)
    assert "This is the only automatic email you will receive" in " ".join(first_text.split())
    assert "This is the only automatic email you will receive" in first_html
    text, html = parts(resent)
    [clinic] = invited_clinics(request)
    for body in (text, html):
        flat = " ".join(body.split())
        assert "only automatic email" not in flat
        assert "a copy of the confirmation of your request" in flat
        assert "Your request has been sent to this clinic" in flat
        assert "sent automatically" not in flat
        assert clinic.city in flat


@pytest.mark.parametrize(
    ("language", "copy", "only"),
    [
        ("fr", "une copie de la confirmation", "seul e-mail automatique"),
        ("nl", "een kopie van de bevestiging", "enige automatische e-mail"),
        ("de", "eine Kopie der Bestätigung", "einzige automatische E-Mail"),
    ],
)
def test_a_resend_says_so_in_every_language(
    client: FlaskClient, app_context, coordinator: Caller, language, copy, only
):
    request = processed(destination="BE", condition="stroke", preferred_language=language)
    db.session.remove()
    response = client.post(
        f"/api/v1/quote-requests/{request.reference}/acknowledgement",
        json={},
        headers=coordinator.headers,
    )
    assert response.status_code == 201, response.get_json()
    first, resent = acknowledgements(request.id)
    assert only in " ".join(parts(first)[0].split())
    for body in parts(resent):
        flat = " ".join(body.split())
        assert copy in flat
        assert only not in flat


# --- 10. Who we are ------------------------------------------------------------


@pytest.mark.parametrize("language", ["en", "fr", "nl", "de"])
def test_every_acknowledgement_says_who_we_are(app_context, organisation, language):
    request = processed(destination="AG", condition="stroke", preferred_language=language)
    [ack] = acknowledgements(request.id)
    text, html = parts(ack)
    for value in organisation.values():
        assert value in text
        assert str(escape(value)) in html
    assert f'href="{organisation["PRIVACY_POLICY_URL"]}"' in html
    assert f'href="mailto:{organisation["CONTACT_EMAIL"]}"' in html
    message = message_from_string(ack.mime, policy=default)
    assert message["Reply-To"]  # so "reply to this email" reaches the coordinators


def test_the_acknowledgement_says_replies_reach_the_coordinators(app_context, organisation):
    request = processed(destination="BE", condition="stroke", preferred_language="en")
    text, html = parts(acknowledgements(request.id)[0])
    for body in (text, html):
        assert "Reply to this email: replies reach our coordinators." in " ".join(body.split())


def test_the_samples_are_marked_so():
    config = from_environment({})
    assert config["ORGANISATION_NAME"] == "Example Facilitator (sample)"
    assert "(sample)" in config["ORGANISATION_ADDRESS"]
    assert config["CONTACT_EMAIL"].endswith(".example")
    assert "sample" in config["PRIVACY_POLICY_URL"]
    own = from_environment(ORGANISATION)
    assert {key: own[key] for key in ORGANISATION} == ORGANISATION


def test_a_privacy_policy_url_that_is_not_one_stops_the_start():
    with pytest.raises(ConfigError, match="PRIVACY_POLICY_URL"):
        from_environment({"PRIVACY_POLICY_URL": "our website"})


@pytest.mark.parametrize("language", ["en", "fr", "nl", "de"])
def test_the_hosted_form_says_who_we_are(client: FlaskClient, organisation, language):
    for path in (f"/form/{language}", f"/form?lang={language}"):
        page = client.get(path).get_data(as_text=True)
        for value in organisation.values():
            assert str(escape(value)) in page
        assert f'href="{organisation["PRIVACY_POLICY_URL"]}"' in page


def test_the_catalog_gives_the_example_form_who_we_are(client: FlaskClient, organisation):
    body = client.get("/api/v1/catalog?lang=nl").get_json()
    assert body["organisation"] == {
        "name": organisation["ORGANISATION_NAME"],
        "address": organisation["ORGANISATION_ADDRESS"],
        "contact_email": organisation["CONTACT_EMAIL"],
        "privacy_policy_url": organisation["PRIVACY_POLICY_URL"],
    }


# --- 12. Disclaimers people can read -----------------------------------------


@pytest.mark.parametrize(
    ("language", "heading"),
    [
        ("en", "Important information – please read"),
        ("fr", "Informations importantes – à lire"),
        ("nl", "Belangrijke informatie – lees dit"),
        ("de", "Wichtige Informationen – bitte lesen"),
    ],
)
def test_disclaimers_have_a_heading_and_a_paragraph_each_urgent_first(
    app: Flask, app_context, language, heading
):
    request = processed(destination="BE", condition="stroke", preferred_language=language)
    [ack] = acknowledgements(request.id)
    assert ack.status == "pending"  # the guard found every required text
    text, html = parts(ack)
    html_heading = f'<h2 style="margin: 0 0 8px; font-size: 18px;">{escape(heading)}</h2>'
    text_heading = heading.upper().replace("–", "-")
    disclaimers = disclaimers_in_scope(language, "BE", "stroke")
    lines = [line.strip() for line in text.splitlines()]
    for d in disclaimers:
        assert d.text in lines  # verbatim, alone on its line
        assert f">{escape(d.text)}</p>" in html  # a paragraph of its own
    organisation = str(escape(app.config["ORGANISATION_NAME"]))
    for body, marker, shown in (
        (text, text_heading, str),
        (html, html_heading, lambda t: str(escape(t))),
    ):
        section = body.split(marker, 1)[1]
        spots = {d.key: section.index(shown(d.text)) for d in disclaimers}
        # Urgent advice first among the disclaimers, and the message does not end on them.
        assert spots["stroke-emergency"] == min(spots.values())
        assert organisation in section[max(spots.values()) :]


def test_an_urgent_request_still_opens_with_the_emergency_advice(app_context):
    request = processed(
        destination="BE",
        condition="stroke",
        preferred_language="en",
        country_of_residence="BE",
        message="My father's face is drooping since this morning and he cannot speak.",
    )
    assert request.urgent
    text, html = parts(acknowledgements(request.id)[0])
    assert text.lstrip().startswith("!!!")
    body = html.split("<body", 1)[1]
    assert body.index('role="alert"') < body.index("Dear ")


def test_the_quotes_email_says_who_we_are_under_readable_disclaimers(
    client: FlaskClient, app: Flask, portugal, coordinator: Caller, organisation
):
    app.config["QUOTE_FANOUT"] = 3
    try:
        request, ids = quoted_request(client, portugal)
    finally:
        app.config["QUOTE_FANOUT"] = 1
    assert send(client, coordinator, request.reference, quote_ids=ids).status_code == 200
    db.session.expire_all()
    [email] = db.session.execute(
        db.select(Notification).where(
            Notification.quote_request_id == request.id, Notification.kind == "quotes"
        )
    ).scalars()
    assert email.status == "pending"  # every required text still there
    text, html = parts(email)
    for value in organisation.values():
        assert value in text
        assert str(escape(value)) in html
    assert "IMPORTANT INFORMATION - PLEASE READ" in text
    assert "Important information – please read" in html
    assert "About these quotes" in text and "About these quotes" in html
    for d in disclaimers_in_scope("en", "PT", "stroke", "quote"):
        assert d.text in [line.strip() for line in text.splitlines()]
        assert f">{escape(d.text)}</p>" in html
