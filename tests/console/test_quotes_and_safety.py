"""The detail's clinic invitations, quotes and urgent flag, and their console actions."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient

from quote_service.extensions import db
from quote_service.models import ClinicQuote, Notification, QuoteRequest
from tests.console.support import clinic_quote, page_token, person, routed, sign_in

COORDINATOR = "cora@quote-service.example"
URGENT = "My father's face is drooping since this morning and he cannot speak"


@pytest.fixture
def signed_in(app: Flask, client: FlaskClient) -> FlaskClient:
    person(app, COORDINATOR)
    assert sign_in(client, COORDINATOR).status_code == 303
    return client


def quoted(app: Flask, client: FlaskClient, **overrides: str) -> tuple[str, int]:
    """A routed request whose invited clinic answered with a quote: (reference, quote id)."""
    reference = routed(app, client, **overrides)
    return reference, clinic_quote(app, reference)


def form_of(client: FlaskClient, reference: str) -> dict[str, str]:
    page = client.get(f"/console/requests/{reference}").text
    return {
        "csrf_token": page_token(page),
        "version": re.search(r'name="version" value="(\d+)"', page).group(1),
    }


def request_state(app: Flask, reference: str) -> tuple[str, int, list[str]]:
    with app.app_context():
        request = db.session.execute(
            db.select(QuoteRequest).where(QuoteRequest.reference == reference)
        ).scalar_one()
        quotes = db.session.execute(
            db.select(ClinicQuote.status).where(ClinicQuote.quote_request_id == request.id)
        ).scalars()
        state = (request.status, request.version, list(quotes))
        db.session.remove()
        return state


def quote_emails(app: Flask, reference: str) -> int:
    with app.app_context():
        count = db.session.execute(
            db.select(db.func.count(Notification.id))
            .join(QuoteRequest)
            .where(QuoteRequest.reference == reference, Notification.kind == "quotes")
        ).scalar_one()
        db.session.remove()
        return count


def test_the_detail_lists_the_invitation_and_the_quote_with_a_box_to_send_it(
    app: Flask, signed_in: FlaskClient
):
    reference, quote_id = quoted(app, signed_in)
    html = signed_in.get(f"/console/requests/{reference}").text
    invitations_table = re.search(r'<table id="invitations">.*?</table>', html, re.S).group(0)
    assert "<td>quoted</td>" in invitations_table
    quotes_table = re.search(r'<table id="quotes">.*?</table>', html, re.S).group(0)
    assert f'name="quote_ids" value="{quote_id}"' in quotes_table
    assert "EUR 9000" in quotes_table and "11000" in quotes_table
    assert "Dr. L. Janssens" in quotes_table and "experimental" in quotes_table
    assert "None yet." not in html


def test_sending_a_ticked_quote_emails_the_patient_and_marks_the_request_quoted(
    app: Flask, signed_in: FlaskClient
):
    reference, quote_id = quoted(app, signed_in)
    form = form_of(signed_in, reference)
    response = signed_in.post(
        f"/console/requests/{reference}/quotes/send",
        data={**form, "quote_ids": str(quote_id), "note": "Best match."},
    )
    assert response.status_code == 303
    status, _, quotes = request_state(app, reference)
    assert status == "quoted" and quotes == ["sent"]
    assert quote_emails(app, reference) == 1
    page = signed_in.get(f"/console/requests/{reference}").text
    assert "Every quote has been sent or withdrawn." in page
    assert "quotes sent" in page  # the timeline


def test_bad_sends_are_refused_with_a_message_and_change_nothing(
    app: Flask, signed_in: FlaskClient
):
    reference, quote_id = quoted(app, signed_in)
    other_reference, other_quote = quoted(app, signed_in, email="luc.peeters@example.org")
    before = request_state(app, reference)
    url = f"/console/requests/{reference}/quotes/send"
    cases = [
        ({}, 422, "Choose at least one quote to send."),
        ({"quote_ids": str(other_quote)}, 422, f"{other_quote}: not a quote of {reference}"),
        ({"quote_ids": "first"}, 422, "Not a valid integer."),
        ({"quote_ids": str(quote_id), "version": ""}, 422, "lost its version"),
    ]
    for extra, status, says in cases:
        form = form_of(signed_in, reference)
        response = signed_in.post(url, data={**form, **extra})
        assert response.status_code == status, extra
        assert says in response.text, extra
        assert request_state(app, reference) == before
    assert quote_emails(app, reference) == 0
    assert request_state(app, other_reference)[2] == ["submitted"]


def test_a_stale_send_is_refused_and_says_what_changed(app: Flask, signed_in: FlaskClient):
    reference, quote_id = quoted(app, signed_in)
    form = form_of(signed_in, reference)
    url = f"/console/requests/{reference}"
    moved = signed_in.post(f"{url}/transitions", data={**form, "to": "in_review"})
    assert moved.status_code == 303
    stale = signed_in.post(f"{url}/quotes/send", data={**form, "quote_ids": str(quote_id)})
    assert stale.status_code == 409
    assert "moved it to in_review" in stale.text
    assert request_state(app, reference)[2] == ["submitted"]
    assert quote_emails(app, reference) == 0


def test_an_urgent_request_shows_its_signs_and_takes_a_review(app: Flask, signed_in: FlaskClient):
    reference = routed(app, signed_in, message=URGENT, preferred_language="en")
    html = signed_in.get(f"/console/requests/{reference}").text
    section = re.search(r'<section[^>]*id="safety">.*?</section>', html, re.S).group(0)
    assert "Urgent symptoms" in section and "Not reviewed yet." in section
    form = form_of(signed_in, reference)
    url = f"/console/requests/{reference}/safety-review"
    bad = signed_in.post(url, data={**form, "verdict": "maybe"})
    assert bad.status_code == 422 and "Must be one of" in bad.text
    missing = signed_in.post(url, data=form)
    assert missing.status_code == 422 and "required" in missing.text.lower()
    done = signed_in.post(url, data={**form, "verdict": "false_alarm", "note": "History only."})
    assert done.status_code == 303
    html = signed_in.get(f"/console/requests/{reference}").text
    verdict = re.search(r'<p id="safety-verdict">(.*?)</p>', html, re.S).group(1)
    assert verdict.startswith("Reviewed: false alarm by ")


def test_a_calm_request_has_no_urgent_section_and_refuses_a_review(
    app: Flask, signed_in: FlaskClient
):
    reference = routed(app, signed_in, message="Stroke in March, left side weakness.")
    html = signed_in.get(f"/console/requests/{reference}").text
    assert 'id="safety"' not in html
    form = form_of(signed_in, reference)
    before = request_state(app, reference)
    response = signed_in.post(
        f"/console/requests/{reference}/safety-review", data={**form, "verdict": "confirmed"}
    )
    assert response.status_code == 409
    assert "was not flagged as urgent" in response.text
    assert request_state(app, reference) == before


def test_the_clinics_page_shows_how_each_clinic_answers(app: Flask, client: FlaskClient):
    person(app, "adam@quote-service.example", "admin")
    assert sign_in(client, "adam@quote-service.example").status_code == 303
    reference, _ = quoted(app, client)
    with app.app_context():
        request = db.session.execute(
            db.select(QuoteRequest).where(QuoteRequest.reference == reference)
        ).scalar_one()
        name = request.provider.name
        db.session.remove()
    html = client.get("/console/clinics").text
    rows = re.findall(r"<tr>.*?</tr>", html, re.S)
    (answered,) = [row for row in rows if f">{name}</a>" in row]
    assert "<td>100%</td>" in answered and " h</td>" in answered
    assert any("<td>not invited yet</td>" in row for row in rows if row != answered)


def test_waiting_on_clinics_means_an_invitation_still_open(
    app: Flask, signed_in: FlaskClient, coordinator
):
    waiting = routed(app, signed_in, email="waiting.patient@example.org")
    answered, _ = quoted(app, signed_in, email="answered.patient@example.org")
    listed = signed_in.get(
        "/api/v1/quote-requests", query_string={"waiting_on": "clinic"}, headers=coordinator.headers
    )
    assert listed.status_code == 200
    assert [item["reference"] for item in listed.get_json()["items"]] == [waiting]
    page = signed_in.get("/console/?view=waiting").text
    assert waiting in page and answered not in page
