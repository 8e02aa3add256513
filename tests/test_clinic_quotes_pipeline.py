"""Clinic quotes end to end: a real worker, Redis, PostgreSQL and SMTP server, links from emails."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import redis
from flask import Flask

from quote_service.extensions import db
from quote_service.models import Invitation
from quote_service.services import invitations
from quote_service.services.notifications import acknowledgement_disclaimers
from tests.conftest import Caller
from tests.support.polling import wait_until
from tests.support.servers import Server
from tests.support.smtp import Received, SmtpSink
from tests.test_worker_pipeline import all_outbox_done, pipeline_app, running_worker

INTAKE = "/api/v1/quote-requests"
LINK = re.compile(r"/clinic/invitations/([A-Za-z0-9_-]{43})")
PATIENT = "rita.fernandes@example.org"


@pytest.fixture
def quotes_app(
    postgres: Server, redis_server: Server, smtp: SmtpSink, make_app, portugal
) -> Iterator[Flask]:
    with redis.Redis.from_url(redis_server.url) as client:
        client.flushdb()
    for index, slug in enumerate(("alfa", "bravo", "charlie")):
        portugal(slug, weight=10 - index)
    app = pipeline_app(make_app, postgres.url, redis_server.url, smtp, QUOTE_FANOUT=3)
    with running_worker(app):
        yield app


def link_token(email: Received) -> str:
    [token] = set(LINK.findall(email.text()))
    return token


def submit(app: Flask) -> str:
    body = {
        "full_name": "Rita Fernandes",
        "email": PATIENT,
        "phone": "+351 912 000 111",
        "country_of_residence": "PT",
        "preferred_language": "en",
        "condition": "stroke",
        "destination": "PT",
        "message": "Stroke in 2024, speech therapy since.",
        "consent_privacy": True,
    }
    response = app.test_client().post(INTAKE, json=body)
    assert response.status_code == 201
    return response.get_json()["reference"]


def clinic_emails(smtp: SmtpSink) -> dict[str, Received]:
    return {
        r.recipients[0].split("@")[0]: r
        for r in smtp.received
        if r.recipients[0].endswith("@clinic.test.example")
    }


def test_three_clinics_invited_two_quote_one_declines_and_the_patient_compares(
    quotes_app: Flask, smtp: SmtpSink, coordinator: Caller
):
    reference = submit(quotes_app)
    assert wait_until(lambda: len(clinic_emails(smtp)) == 3 and all_outbox_done(quotes_app))
    emails = clinic_emails(smtp)
    assert sorted(emails) == ["alfa", "bravo", "charlie"]
    for email in emails.values():
        assert reference in email.text()
        assert "Rita" not in email.raw.decode() and "912 000" not in email.text()

    client = quotes_app.test_client()
    answers = {
        "alfa": {"price_min": 14000, "currency": "EUR", "evidence": "experimental"},
        "bravo": {
            "price_min": 9800,
            "price_max": 12500,
            "currency": "USD",
            "evidence": "clinical-trial",
            "trial_id": "NCT04567890",
            "includes": ["treatment", "accommodation"],
            "excludes": ["flights"],
        },
    }
    ids = []
    for slug, answer in answers.items():
        response = client.post(
            f"/api/v1/clinic/invitations/{link_token(emails[slug])}/quote",
            json={**answer, "valid_until": "2099-12-31"},
        )
        assert response.status_code == 201, response.get_json()
        ids.append(response.get_json()["quote_id"])
    declined = client.post(
        f"/api/v1/clinic/invitations/{link_token(emails['charlie'])}/decline",
        json={"reason": "cannot-treat"},
    )
    assert declined.status_code == 200

    sent = client.post(
        f"/api/v1/quote-requests/{reference}/quotes/send",
        json={"quote_ids": ids},
        headers=coordinator.headers,
    )
    assert sent.status_code == 200
    assert sent.get_json()["status"] == "quoted"
    assert wait_until(lambda: len(smtp.to(PATIENT)) == 2 and all_outbox_done(quotes_app))
    ack, quotes_email = smtp.to(PATIENT)
    assert reference in quotes_email.message["Subject"]
    lines = quotes_email.text().splitlines()
    text = quotes_email.text()
    assert "€14,000.00" in text
    assert "$9,800.00 – $12,500.00" in text
    assert "NCT04567890" in text and "Accommodation" in text and "Flights" in text
    with quotes_app.app_context():
        required = [
            d.text
            for d in acknowledgement_disclaimers("en", "PT", "stroke", context="quote")
            if d.required
        ]
    assert len(required) >= 5 and all(disclaimer in lines for disclaimer in required)
    assert "quotes-are-estimates" not in ack.text()

    # The patient opens the link of the quote email and picks bravo's quote
    # (saying it twice changes nothing).
    [patient_token] = set(re.findall(r"/p/([A-Za-z0-9_-]{43})\b", text))
    for _ in range(2):
        interest = client.post(
            f"/api/v1/patient/{patient_token}/interest", json={"quote_id": ids[1]}
        )
        assert interest.status_code == 200, interest.get_json()
    assert wait_until(
        lambda: (
            len(smtp.to("coordinators@quote-service.example")) == 1 and all_outbox_done(quotes_app)
        )
    )
    [alert] = smtp.to("coordinators@quote-service.example")
    assert reference in alert.message["Subject"] and "bravo clinic" in alert.text()


def test_fallback_after_expiry_invites_the_next_clinic_and_the_first_link_is_gone(
    postgres: Server, redis_server: Server, smtp: SmtpSink, make_app, portugal
):
    with redis.Redis.from_url(redis_server.url) as client:
        client.flushdb()
    portugal("alfa", weight=9)
    portugal("bravo", weight=5)
    app = pipeline_app(
        make_app,
        postgres.url,
        redis_server.url,
        smtp,
        QUOTE_FANOUT=1,
        CLINIC_RESPONSE_HOURS=0.003,  # 10.8 seconds: the reminder at 5.4
    )
    with running_worker(app):
        reference = submit(app)
        assert wait_until(lambda: "alfa" in clinic_emails(smtp) and all_outbox_done(app))
        assert "bravo" not in clinic_emails(smtp)
        first = link_token(clinic_emails(smtp)["alfa"])

        def sweep() -> bool:
            # What beat does every minute, run here until the deadline has passed.
            with app.app_context():
                invitations.sweep()
                db.session.remove()
            return "bravo" in clinic_emails(smtp)

        assert wait_until(sweep, timeout=80, step=0.5)
        assert wait_until(lambda: all_outbox_done(app))

    client = app.test_client()
    gone = client.get(f"/clinic/invitations/{first}")
    assert gone.status_code == 410
    assert "expired" in gone.get_data(as_text=True)
    api = client.get(f"/api/v1/clinic/invitations/{first}")
    assert api.status_code == 410
    assert api.get_json()["error"]["code"] == "invitation_closed"
    second = client.get(f"/api/v1/clinic/invitations/{link_token(clinic_emails(smtp)['bravo'])}")
    assert second.status_code == 200 and second.get_json()["reference"] == reference
    with app.app_context():
        statuses = sorted(db.session.execute(db.select(Invitation.status)).scalars())
        db.session.remove()
    assert statuses == ["expired", "open"]
    # The first clinic had its one reminder at half time, before it expired.
    reminders = [r for r in smtp.received if "Reminder" in r.message["Subject"]]
    assert [r.recipients[0] for r in reminders] == ["alfa@clinic.test.example"]
