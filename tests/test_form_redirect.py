"""Plain HTML forms with `redirect_to`: a 303 back to the website, never a JSON page."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from quote_service.extensions import db
from quote_service.models import QuoteRequest
from tests.conftest import base_config
from tests.payloads import minimal_body, valid_body
from tests.support.servers import Server

URL = "/api/v1/quote-requests"
SITE = "https://www.clinic-quotes.example"
THANKS = f"{SITE}/free-quote/thanks"


@pytest.fixture
def site_app(app: Flask, postgres: Server, make_app) -> Callable[..., Flask]:
    def build(**overrides: Any) -> Flask:
        config = {"CORS_ORIGINS": [SITE, "http://localhost:8080"], **overrides}
        return make_app(base_config(postgres.url, **config))

    return build


@pytest.fixture
def browser(site_app) -> FlaskClient:
    return site_app().test_client()


def form(**overrides: Any) -> dict[str, str]:
    """The valid body as an HTML form sends it: strings, checkboxes `on`."""
    fields = {key: str(value) for key, value in valid_body().items()}
    fields.update(consent_privacy="on", consent_marketing="", website="", redirect_to=THANKS)
    fields.update(overrides)
    return {key: value for key, value in fields.items() if value is not None}


def query_of(location: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(location).query)


def references(app: Flask) -> list[str]:
    with app.app_context():
        return list(db.session.execute(db.select(QuoteRequest.reference)).scalars())


def test_success_is_a_303_to_the_page_with_the_reference(site_app):
    app = site_app()
    response = app.test_client().post(URL, data=form())

    assert response.status_code == 303
    location = response.headers["Location"]
    assert location.startswith(f"{THANKS}?reference=QR-")
    assert query_of(location) == {"reference": references(app)}
    assert response.get_data() == b""


@pytest.mark.parametrize(
    ("target", "expected_prefix"),
    [
        (f"{THANKS}?lang=fr", f"{THANKS}?lang=fr&reference=QR-"),
        (f"{THANKS}?lang=fr#top", f"{THANKS}?lang=fr&reference=QR-"),
        (f"{SITE}:443/merci", f"{SITE}:443/merci?reference=QR-"),
        ("http://localhost:8080/dev", "http://localhost:8080/dev?reference=QR-"),
    ],
)
def test_the_reference_joins_an_existing_query(browser, target: str, expected_prefix: str):
    response = browser.post(URL, data=form(redirect_to=target))
    assert response.status_code == 303
    location = response.headers["Location"]
    assert location.startswith(expected_prefix)
    assert location.endswith("#top") == target.endswith("#top")


def test_invalid_fields_are_a_303_naming_the_fields_never_their_values(browser, site_app):
    response = browser.post(URL, data=form(email="jan@@example", phone="12"))

    assert response.status_code == 303
    location = response.headers["Location"]
    assert location == f"{THANKS}?error=validation_error&fields=email,phone"
    assert "jan" not in location


def test_a_catalog_refusal_is_a_303_too(browser):
    response = browser.post(URL, data=form(destination="FR"))
    assert response.status_code == 303
    assert response.headers["Location"] == (f"{THANKS}?error=validation_error&fields=destination")


def test_a_fixed_form_then_succeeds(browser):
    assert browser.post(URL, data=form(email="nope")).status_code == 303
    response = browser.post(URL, data=form())
    assert query_of(response.headers["Location"])["reference"][0].startswith("QR-")


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/thanks",
        "http://www.clinic-quotes.example/thanks",  # another scheme is another origin
        "https://www.clinic-quotes.example:8443/thanks",  # and another port
        "https://www.clinic-quotes.example.evil.example/",
        "https://www.clinic-quotes.example@evil.example/",
        "https://www.clinic-quotes.example\\@evil.example/",
        "//www.clinic-quotes.example/thanks",
        "/free-quote/thanks",
        "javascript:alert(1)",
        "*",
    ],
)
def test_a_redirect_to_another_origin_is_422_and_never_followed(browser, site_app, target: str):
    response = browser.post(URL, data=form(redirect_to=target))

    assert response.status_code == 422
    assert "Location" not in response.headers
    error = response.get_json()["error"]
    assert error["code"] == "validation_error"
    assert list(error["fields"]) == ["redirect_to"]


@pytest.mark.parametrize("target", [f"{THANKS}?x=\x01", f"{THANKS}?q={'a' * 2000}"])
def test_a_refused_redirect_on_an_allowed_origin_is_not_followed_either(browser, target: str):
    response = browser.post(URL, data=form(redirect_to=target))
    assert response.status_code == 422
    assert "Location" not in response.headers
    assert list(response.get_json()["error"]["fields"]) == ["redirect_to"]


def test_a_wildcard_cors_origin_allows_no_redirect(site_app):
    client = site_app(CORS_ORIGINS=["*"]).test_client()
    response = client.post(URL, data=form())
    assert response.status_code == 422
    assert "redirect_to" in response.get_json()["error"]["fields"]


def test_a_bad_redirect_and_bad_fields_come_back_together_as_json(browser):
    response = browser.post(URL, data=form(redirect_to="https://evil.example/", email="x"))
    assert response.status_code == 422
    assert {"redirect_to", "email"} <= set(response.get_json()["error"]["fields"])


@pytest.mark.parametrize("target", [THANKS, "", "https://evil.example/"])
def test_json_bodies_may_not_use_redirect_to(browser, target: str):
    response = browser.post(URL, json=minimal_body(redirect_to=target))
    assert response.status_code == 422
    assert response.get_json()["error"]["fields"] == {"redirect_to": ["Unknown field."]}


def test_a_form_without_redirect_to_still_gets_json(browser):
    response = browser.post(URL, data=form(redirect_to=None))
    assert response.status_code == 201
    assert response.get_json()["reference"].startswith("QR-")


def test_rate_limited_forms_are_sent_back_with_the_error_code(site_app):
    client = site_app(RATE_LIMIT_INTAKE="1/minute").test_client()
    assert client.post(URL, data=form()).status_code == 303
    refused = client.post(URL, data=form(email="second.patient@example.org"))
    assert refused.status_code == 303
    assert refused.headers["Location"] == f"{THANKS}?error=rate_limited"


def test_a_replayed_form_post_goes_to_the_same_reference(browser):
    headers = {"Idempotency-Key": "form-1"}
    first = browser.post(URL, data=form(), headers=headers)
    again = browser.post(URL, data=form(), headers=headers)
    assert first.status_code == again.status_code == 303
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["Idempotent-Replayed"] == "true"


def test_redirect_to_is_documented_for_forms(client: FlaskClient):
    spec = client.get("/openapi.json").get_json()
    operation = spec["paths"][URL]["post"]
    form_schema = operation["requestBody"]["content"]["application/x-www-form-urlencoded"]
    name = form_schema["schema"]["$ref"].rsplit("/", 1)[-1]
    field = spec["components"]["schemas"][name]["properties"]["redirect_to"]
    assert "CORS_ORIGINS" in field["description"]
    assert "303" in operation["responses"]
