"""The hosted quote form (`/form`, `/form/<lang>`) and the home page, as plain HTTP.

What a browser without JavaScript gets: a page in its language, errors in a
summary and next to each field with the values kept, and after sending a
confirmation page. (tests/test_browser_hosted_form.py drives it in Chromium.)
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from quote_service.extensions import db
from quote_service.models import QuoteRequest
from quote_service.web import receipts
from tests.conftest import base_config
from tests.support.servers import Server

LANGUAGES = ("en", "fr", "nl", "de")
TITLES = {
    "en": "Ask for a free quote",
    "fr": "Demander un devis gratuit",
    "nl": "Vraag een gratis offerte aan",
    "de": "Kostenloses Angebot anfragen",
}
MISSING_AFTER_AT = {
    "en": "Enter a valid email address: something is missing after the @ sign.",
    "fr": "Indiquez une adresse e-mail valide : il manque quelque chose après le @.",
    "nl": "Geef een geldig e-mailadres op: er ontbreekt iets na het @-teken.",
    "de": "Geben Sie eine gültige E-Mail-Adresse an: Nach dem @-Zeichen fehlt etwas.",
}
# Thirty thousand euros as people write it in each language.
BUDGETS = {"en": "30,000", "fr": "30 000", "nl": "30.000", "de": "30.000"}
DATES = {"en": "3/27/{y}", "fr": "27/03/{y}", "nl": "27-03-{y}", "de": "27.03.{y}"}


def form_values(**overrides: str) -> dict[str, str]:
    values = {
        "full_name": "Jan Peeters",
        "email": "jan.peeters@example.org",
        "country_of_residence": "BE",
        "destination": "BE",
        "condition": "stroke",
        "treatment": "msc",
        "consent_privacy": "on",
        "website": "",
    }
    values.update(overrides)
    return values


def stored(app: Flask) -> list[QuoteRequest]:
    with app.app_context():
        rows = db.session.execute(db.select(QuoteRequest)).scalars().all()
        db.session.expunge_all()
        return list(rows)


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_form_is_served_in_each_language(client: FlaskClient, language: str):
    for url in (f"/form/{language}", f"/form?lang={language}"):
        response = client.get(url)
        assert response.status_code == 200
        page = response.get_data(as_text=True)
        assert f'<html lang="{language}">' in page
        assert f"<h1>{TITLES[language]}</h1>" in page
        assert f'action="/form/{language}"' in page


def test_the_form_follows_the_browser_language_without_lang(client: FlaskClient):
    page = client.get("/form", headers={"Accept-Language": "nl-BE,nl;q=0.8"}).get_data(True)
    assert '<html lang="nl">' in page


def test_an_unknown_language_is_a_404(client: FlaskClient):
    response = client.get("/form/xx")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


def test_the_catalog_is_rendered_server_side(client: FlaskClient):
    page = client.get("/form/fr").get_data(as_text=True)
    # Destinations with the conditions each offers, for the script and for people.
    assert re.search(r'<option value="AG" data-conditions="[^"]*diabetes-type-2', page)
    assert "<strong>Antigua-et-Barbuda</strong>" in page
    assert "Accident vasculaire cérébral (AVC)" in page
    # The consent text and the disclaimers, scoped ones marked with their scope.
    assert 'data-key="not-medical-advice"' in page
    assert 'data-key="destination-be" data-destination="BE"' in page


def test_countries_are_names_in_the_page_language_with_the_code_sent(client: FlaskClient):
    french = client.get("/form/fr").get_data(as_text=True)
    assert '<option value="DE">Allemagne</option>' in french
    german = client.get("/form/de").get_data(as_text=True)
    assert '<option value="BE">Belgien</option>' in german
    assert german.index(">Ägypten<") < german.index(">Belgien<")  # accents sort as letters


def test_pages_have_a_csp_without_inline_scripts(client: FlaskClient):
    for url in ("/", "/form/en"):
        response = client.get(url)
        policy = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy
        assert "frame-ancestors 'self'" in policy
        scripts = re.findall(r"<script[^>]*>", response.get_data(as_text=True))
        assert all("src=" in tag for tag in scripts)


def test_sites_allowed_by_cors_origins_may_embed_the_form(
    make_app: Any, postgres: Server, app: Flask
):
    other = make_app(base_config(postgres.url, CORS_ORIGINS=["https://clinic.example"]))
    policy = other.test_client().get("/form/en").headers["Content-Security-Policy"]
    assert "frame-ancestors 'self' https://clinic.example" in policy


@pytest.mark.parametrize("language", LANGUAGES)
def test_errors_are_summarised_and_next_to_each_field_with_the_values_kept(
    client: FlaskClient, app: Flask, language: str
):
    values = form_values(email="jan.peeters@", consent_privacy="", message="Since March.")
    response = client.post(f"/form/{language}", data=values)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    message = MISSING_AFTER_AT[language]
    summary = page[
        page.index('id="error-summary"') : page.index("</ul>", page.index("error-summary"))
    ]
    # Each entry names its field, so "This field is required." says which one.
    label = {
        "en": "Email address: ",
        "fr": "Adresse e-mail : ",
        "nl": "E-mailadres: ",
        "de": "E-Mail-Adresse: ",
    }
    assert f'<a href="#email">{label[language]}{message}</a>' in summary
    assert 'href="#consent_privacy"' in summary
    assert re.search(r'<p class="error-message" id="email-error">.*' + re.escape(message), page)
    assert re.search(r'id="email"[^>]*aria-describedby="email-hint email-error"', page)
    assert re.search(r'id="email"[^>]*aria-invalid="true"', page)
    # What was typed is still there.
    assert 'value="jan.peeters@"' in page and 'value="Jan Peeters"' in page
    assert '<option value="BE" selected>' in page
    assert ">Since March.</textarea>" in page
    assert page.count('aria-invalid="true"') == 2
    assert stored(app) == []


@pytest.mark.parametrize("language", LANGUAGES)
def test_budget_and_dates_are_read_as_people_write_them(
    client: FlaskClient, app: Flask, language: str
):
    year = date.today().year + 1
    values = form_values(
        budget_eur=BUDGETS[language],
        travel_from=DATES[language].format(y=year),
        travel_to=(date(year, 3, 27) + timedelta(days=10)).isoformat(),  # a date input's value
    )
    response = client.post(f"/form/{language}", data=values)
    assert response.status_code == 303, response.get_data(as_text=True)[:2000]
    (request,) = stored(app)
    assert request.budget_eur == 30000
    assert request.travel_from == date(year, 3, 27)
    assert request.preferred_language == "en"  # the form's default is the page's: not sent here


def test_a_budget_that_means_something_else_in_the_page_language_is_refused(
    client: FlaskClient,
):
    response = client.post("/form/de", data=form_values(budget_eur="30,000"))
    assert response.status_code == 422
    assert "Geben Sie einen Betrag in ganzen Euro an, zum Beispiel 30.000." in response.get_data(
        as_text=True
    )


def sent_page(client: FlaskClient, response: Any) -> str:
    assert response.status_code == 303
    location = response.headers["Location"]
    assert urlsplit(location).path.endswith("/sent")
    page = client.get(location)
    assert page.status_code == 200
    return page.get_data(as_text=True)


def test_success_shows_the_reference_the_address_and_what_happens_next(
    client: FlaskClient, app: Flask
):
    response = client.post("/form/fr", data=form_values(preferred_language="fr"))
    page = sent_page(client, response)
    (request,) = stored(app)
    assert f'<strong id="reference">{request.reference}</strong>' in page
    assert "Nous avons envoyé une confirmation à jan.peeters@example.org." in page
    assert "courriers indésirables (spam)" in page
    assert "Un coordinateur répond en général sous 24 heures." in page
    # Nothing personal in the address itself (the sealed receipt is random
    # base64, so look for whole words: a short one like "jan" can occur by chance).
    location = response.headers["Location"].lower()
    assert "peeters" not in location and "example.org" not in location
    assert request.reference.lower() not in location


def test_urgent_advice_comes_first_and_large(app: Flask, client: FlaskClient):
    with app.test_request_context():
        token = receipts.seal(
            {
                "reference": "QR-7K4M2P9X",
                "urgent": True,
                "advice": "Appelez le 112 maintenant : ce que vous décrivez peut être un AVC.",
                "emergency_number": "112",
            },
            "jan@example.org",
        )
    page = client.get(f"/form/fr/sent?receipt={token}").get_data(as_text=True)
    main = page[page.index("<main") :]
    assert main.index('class="urgent"') < main.index('id="success"')
    assert '<h1 class="urgent-title">Si cela se produit maintenant, appelez le 112</h1>' in main
    assert "ce que vous décrivez peut être un AVC" in main


def test_an_altered_receipt_leads_back_to_the_form(client: FlaskClient):
    response = client.get("/form/de/sent?receipt=gAAAAAnot-a-receipt")
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/form/de")


def test_the_form_has_the_intake_rate_limit_and_says_so_in_its_language(
    make_app: Any, postgres: Server, app: Flask
):
    limited = make_app(base_config(postgres.url, RATE_LIMIT_INTAKE="1/minute")).test_client()
    assert limited.post("/form/nl", data=form_values(email="x@")).status_code == 422
    # A refused form does not use up the limit; the request it takes does.
    assert limited.post("/form/nl", data=form_values()).status_code == 303
    response = limited.post("/form/nl", data=form_values(email="y@"))
    assert response.status_code == 429
    assert "Retry-After" in response.headers
    page = response.get_data(as_text=True)
    assert "U hebt in korte tijd meerdere aanvragen verstuurd." in page
    assert 'value="y@"' in page


def test_the_home_page_links_the_form_the_console_and_the_docs(client: FlaskClient):
    response = client.get("/", headers={"Accept-Language": "fr"})
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    for link in ('href="/form"', 'href="/console/"', 'href="/docs"', 'href="/form/de"'):
        assert link in page
    assert "Demander un devis gratuit" in page


def test_a_receipt_is_sealed(app: Flask):
    with app.test_request_context():
        token = receipts.seal({"reference": "QR-7K4M2P9X"}, "jan@example.org")
        assert "jan" not in token
        assert receipts.unseal(token)["email"] == "jan@example.org"
        assert receipts.unseal(token[:-4] + "AAAA") is None
    assert parse_qs("receipt=" + token)
