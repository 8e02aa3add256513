"""The acknowledgement: every required disclaimer in scope, in the patient's language."""

from __future__ import annotations

import hashlib
import re
from email import message_from_string
from email.policy import default
from pathlib import Path

import pytest
from flask import Flask
from markupsafe import escape

from quote_service.extensions import db
from quote_service.mail.rendering import PACKAGE_TEMPLATES
from quote_service.models import Disclaimer, Event, Notification, OutboxMessage
from quote_service.services import pipeline
from quote_service.services.catalog import disclaimers_in_scope
from tests.conftest import base_config
from tests.routing_fixtures import received_row, submit
from tests.support.servers import Server


def notifications_of(request_id: int) -> dict[str, Notification]:
    rows = db.session.execute(
        db.select(Notification).where(Notification.quote_request_id == request_id)
    ).scalars()
    return {n.kind: n for n in rows}


def parts(notification: Notification) -> tuple[str, str]:
    message = message_from_string(notification.mime, policy=default)
    return (
        message.get_body(("plain",)).get_content(),
        message.get_body(("html",)).get_content(),
    )


def process(**overrides) -> dict[str, Notification]:
    request = submit(**overrides)
    pipeline.process_received(received_row(request).id)
    return notifications_of(request.id)


@pytest.mark.parametrize(
    ("language", "destination", "condition", "scoped_in", "scoped_out"),
    [
        ("en", "BE", "stroke", {"destination-be", "stroke-emergency"}, {"destination-ag"}),
        (
            "fr",
            "BE",
            "diabetes-type-1",
            {"destination-be", "diabetes-type-1-medication"},
            {"stroke-emergency", "destination-ag"},
        ),
        (
            "nl",
            "AG",
            "stroke-rehabilitation",
            {"destination-ag"},
            {"stroke-emergency", "destination-be"},
        ),
        (
            "de",
            "AG",
            "diabetes-type-2",
            {"destination-ag", "diabetes-type-2-medication"},
            {"diabetes-type-1-medication"},
        ),
    ],
)
def test_disclaimers_by_scope_and_language(
    app_context, smtp, language, destination, condition, scoped_in, scoped_out
):
    notifications = process(
        preferred_language=language, destination=destination, condition=condition
    )
    ack = notifications["acknowledgement"]
    assert ack.status == "pending"
    assert ack.language == language
    keys = {d["key"] for d in ack.disclaimers}
    assert scoped_in <= keys
    assert not keys & scoped_out
    assert {
        "not-medical-advice",
        "consult-your-physician",
        "no-endorsement",
        "no-warranty",
        "stem-cell-experimental",
    } <= keys
    text, html = parts(ack)
    for disclaimer in disclaimers_in_scope(language, destination, condition):
        assert disclaimer.text in text.splitlines()
        assert {
            "key": disclaimer.key,
            "version": disclaimer.version,
            "language": language,
        } in ack.disclaimers
    assert ack.disclaimers and all(d["language"] == language for d in ack.disclaimers)
    for disclaimer in disclaimers_in_scope(language, destination, condition):
        # One paragraph per disclaimer, its text whole.
        assert re.search(rf"<p[^>]*>{re.escape(str(escape(disclaimer.text)))}</p>", html)


def test_acknowledgement_holds_reference_and_next_steps(app_context, smtp):
    request = submit(destination="BE", condition="stroke", preferred_language="en")
    pipeline.process_received(received_row(request).id)
    ack = notifications_of(request.id)["acknowledgement"]
    text, _ = parts(ack)
    assert request.reference in ack.subject
    assert request.reference in text
    assert "24 hours" in text
    assert ack.recipient == request.email
    assert ack.message_id.startswith("<") and ack.message_id.endswith(">")
    # The hash is of the very bytes stored and sent.
    assert ack.body_sha256 == hashlib.sha256(ack.mime.encode("utf-8")).hexdigest()


def test_a_disclaimer_without_translation_goes_out_in_english(app: Flask, app_context, smtp):
    extra = Disclaimer(
        key="test-english-only",
        version=1,
        language="en",
        required=True,
        text="English-only test disclaimer, still required.",
    )
    db.session.add(extra)
    db.session.commit()
    try:
        ack = process(preferred_language="fr", destination="BE", condition="stroke")[
            "acknowledgement"
        ]
        assert {"key": "test-english-only", "version": 1, "language": "en"} in ack.disclaimers
        assert extra.text in parts(ack)[0].splitlines()
    finally:
        db.session.delete(extra)
        db.session.commit()


def test_provider_email_carries_the_minimum(app_context, smtp):
    request = submit(
        destination="BE",
        condition="stroke",
        full_name="Zoltan Canaryname",
        email="zoltan.canary@example.org",
        phone="+32 470 99 88 77",
        country_of_residence="BE",
        patient_age=58,
        message="Left-side weakness since June.",
    )
    pipeline.process_received(received_row(request).id)
    provider_email = notifications_of(request.id)["provider"]
    text, html = parts(provider_email)
    for body in (text, html, provider_email.subject):
        assert "Canaryname" not in body
        assert "zoltan.canary" not in body
        assert "470" not in body
    assert request.reference in text
    assert "58" in text
    assert "Left-side weakness since June." in text
    assert provider_email.recipient.endswith(".example")


def test_guard_blocks_an_acknowledgement_missing_a_disclaimer(
    postgres: Server, app: Flask, smtp, tmp_path: Path, make_app
):
    # A deployment's template override that forgot the disclaimers loop.
    original = (PACKAGE_TEMPLATES / "acknowledgement.en.txt.j2").read_text(encoding="utf-8")
    broken = original.split("{% for d in disclaimers")[0] + "\n(no disclaimers here)\n"
    (tmp_path / "acknowledgement.en.txt.j2").write_text(broken, encoding="utf-8")
    broken_app = make_app(base_config(postgres.url, MAIL_TEMPLATES_DIR=str(tmp_path)))

    with broken_app.app_context():
        request = submit(destination="BE", condition="stroke", preferred_language="en")
        pipeline.process_received(received_row(request).id)
        ack = notifications_of(request.id)["acknowledgement"]
        assert ack.status == "blocked"
        assert "not-medical-advice" in ack.last_error
        events = (
            db.session.execute(db.select(Event.type).where(Event.quote_request_id == request.id))
            .scalars()
            .all()
        )
        assert "acknowledgement_blocked" in events
        sends = (
            db.session.execute(
                db.select(OutboxMessage).where(OutboxMessage.topic == "notification.send")
            )
            .scalars()
            .all()
        )
        assert ack.id not in [row.payload["notification_id"] for row in sends]
        db.session.remove()
    assert smtp.received == []
