"""/p/<token>: the patient's page, in their language, every action a plain form post."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from quote_service.extensions import db
from quote_service.models import PrivacyRequest, QuoteRequest
from tests.patient_fixtures import events_of, fan_out, notifications_of, routed, token, with_quotes

fan_out_to_two = fan_out(2)


def page(client: FlaskClient, secret: str, **query: str):
    return client.get(f"/p/{secret}", query_string=query)


def test_the_page_shows_the_request_and_the_sent_quote_in_the_patients_language(
    client: FlaskClient, coordinator, portugal
):
    request, sent, _ = with_quotes(client, coordinator, portugal, preferred_language="fr")
    response = page(client, token(request))
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert '<html lang="fr">' in html
    assert "Votre demande" in html and request.reference in html
    assert "Devis qui vous ont été envoyés" in html
    assert "a clinic" in html and "b clinic" in html  # both asked to quote
    assert html.count("Ce devis m'intéresse") == 1  # only the quote sent
    assert f'name="quote_id" value="{sent}"' in html
    assert "12\u202f000,00\xa0€ (prix fixe)" in html
    assert "Retirer ma demande" in html and "Une copie de mes données" in html
    assert "<script" not in html  # works without JavaScript


def test_the_page_says_who_we_are(client: FlaskClient, app: Flask, portugal):
    request = routed(portugal)
    app.config.update(
        ORGANISATION_NAME="Harbour Health Facilitators",
        ORGANISATION_ADDRESS="1 Quay Street, 1000 Brussels",
        CONTACT_EMAIL="hello@harbour.example",
        PRIVACY_POLICY_URL="https://harbour.example/privacy",
    )
    html = page(client, token(request)).get_data(as_text=True)
    footer = html[html.index('<footer class="site-footer">') :]
    assert "Harbour Health Facilitators" in footer
    assert "1 Quay Street, 1000 Brussels" in footer
    assert 'href="mailto:hello@harbour.example"' in footer
    assert 'href="https://harbour.example/privacy"' in footer


def test_the_page_sends_the_headers_of_a_secret_link(client: FlaskClient, portugal):
    request = routed(portugal)
    response = page(client, token(request))
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Cache-Control"] == "no-store"
    assert "form-action 'self'" in response.headers["Content-Security-Policy"]
    assert "'unsafe-inline'" not in response.headers["Content-Security-Policy"]


def test_an_unknown_token_is_a_404_page(client: FlaskClient):
    response = client.get("/p/" + "x" * 43, headers={"Accept-Language": "de"})
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    assert "Unter dieser Adresse gibt es keine Anfrage." in response.get_data(as_text=True)
    assert client.post("/p/nope", data={"action": "withdrawal"}).status_code == 404


def test_interest_is_a_form_post_that_comes_back_to_the_page(
    client: FlaskClient, coordinator, portugal
):
    request, sent, _ = with_quotes(client, coordinator, portugal)
    secret = token(request)
    response = client.post(f"/p/{secret}", data={"action": "interest", "quote_id": str(sent)})
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/p/{secret}?done=interest")
    html = page(client, secret, done="interest").get_data(as_text=True)
    assert "our coordinators know which quote interests you" in html
    assert "You told us this quote interests you." in html
    db.session.expire_all()
    assert len(events_of(request, "patient_interest")) == 1
    assert len(notifications_of(request, "interest_alert")) == 1


def test_interest_in_a_quote_not_sent_answers_the_page_with_the_error(
    client: FlaskClient, coordinator, portugal
):
    request, _, not_sent = with_quotes(client, coordinator, portugal)
    response = client.post(
        f"/p/{token(request)}", data={"action": "interest", "quote_id": str(not_sent)}
    )
    assert response.status_code == 422
    assert "This quote was not sent to you." in response.get_data(as_text=True)


def test_withdrawal_needs_the_box_ticked_then_withdraws(client: FlaskClient, portugal):
    request = routed(portugal, preferred_language="nl")
    secret = token(request)
    unticked = client.post(f"/p/{secret}", data={"action": "withdrawal"})
    assert unticked.status_code == 422
    assert "Vink het vakje aan" in unticked.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get_one(QuoteRequest, request.id).status == "routed"

    response = client.post(f"/p/{secret}", data={"action": "withdrawal", "confirm": "yes"})
    assert response.status_code == 303
    db.session.expire_all()
    withdrawn = db.session.get_one(QuoteRequest, request.id)
    assert withdrawn.status == "withdrawn" and withdrawn.consent_withdrawn_at is not None
    html = page(client, secret, done="withdrawal").get_data(as_text=True)
    assert "Uw aanvraag is ingetrokken." in html
    assert "Door u ingetrokken" in html
    assert 'value="withdrawal"' not in html  # no second withdrawal form

    again = client.post(f"/p/{secret}", data={"action": "withdrawal", "confirm": "yes"})
    assert again.status_code == 409
    assert "U hebt deze aanvraag al ingetrokken." in again.get_data(as_text=True)


def test_a_privacy_request_from_the_page_names_its_due_date(client: FlaskClient, portugal):
    request = routed(portugal, preferred_language="de")
    secret = token(request)
    response = client.post(f"/p/{secret}", data={"action": "privacy", "kind": "erasure"})
    assert response.status_code == 303
    db.session.expire_all()
    [row] = list(db.session.execute(db.select(PrivacyRequest)).scalars())
    assert row.kind == "erasure" and row.status == "open"
    html = page(client, secret, done="erasure").get_data(as_text=True)
    assert "Wir haben Ihre Anfrage auf Löschung Ihrer Daten erhalten." in html
    assert str(row.due_at.year) in html

    bad = client.post(f"/p/{secret}", data={"action": "privacy", "kind": "delete"})
    assert bad.status_code == 422
    assert "Wählen Sie Kopie oder Löschung." in bad.get_data(as_text=True)
    missing = client.post(f"/p/{secret}", data={"action": "privacy"})
    assert missing.status_code == 422


def test_an_unknown_action_is_a_400_page(client: FlaskClient, portugal):
    request = routed(portugal)
    response = client.post(f"/p/{token(request)}", data={"action": "delete-everything"})
    assert response.status_code == 400
    assert "Choose what you want to do." in response.get_data(as_text=True)
