"""Text that looks like something else: invisible or reversed names, other scripts'
digits as numbers, local parts longer than mail servers take."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.payloads import minimal_body

URL = "/api/v1/quote-requests"


def refused_field(response: TestResponse) -> list[str]:
    assert response.status_code == 422, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] == "validation_error"
    return list(error["fields"])


@pytest.mark.parametrize(
    "name",
    [
        "\u200b",
        "\u200b\u200c\u200d",
        "\u2060\ufeff",
        "\u200b \u200b",
        "\u0301\u0301",  # combining marks with nothing to combine with
    ],
)
def test_a_name_of_only_invisible_characters_is_refused(client: FlaskClient, name):
    response = client.post(URL, json=minimal_body(full_name=name))
    assert refused_field(response) == ["full_name"]
    assert response.get_json()["error"]["fields"]["full_name"] == ["This field is required."]


@pytest.mark.parametrize(
    "name", ["Anna\u202eenaM", "\u202dJan", "Jan\u202a Peeters\u202c", "Jan \u2067Peeters\u2069"]
)
def test_a_name_with_bidirectional_controls_is_refused(client: FlaskClient, name):
    response = client.post(URL, json=minimal_body(full_name=name))
    assert refused_field(response) == ["full_name"]
    assert "control characters" in response.get_json()["error"]["fields"]["full_name"][0]


@pytest.mark.parametrize(
    "name", ["محمد الأحمد", "Zoë O'Brien-Łukasiewicz", "李小龍", "श्री गणेश", "יעל כהן"]
)
def test_names_in_any_script_are_welcome(client: FlaskClient, name):
    response = client.post(URL, json=minimal_body(full_name=name, email=f"{len(name)}@example.org"))
    assert response.status_code == 201, response.get_json()


@pytest.mark.parametrize("field", ["patient_age", "budget_eur"])
@pytest.mark.parametrize("digits", ["٦٤", "۶۴", "６４", "६४", "6٤"])
def test_only_ascii_digits_are_a_number(client: FlaskClient, field, digits):
    form = {**minimal_body(consent_privacy="on"), field: digits}
    response = client.post(URL, data=form)
    assert refused_field(response) == [field]


def test_ascii_digits_from_a_form_are_a_number(client: FlaskClient):
    form = {**minimal_body(consent_privacy="on"), "patient_age": "64", "budget_eur": "25000"}
    assert client.post(URL, data=form).status_code == 201


@pytest.mark.parametrize("local", ["a" * 65, "é" * 33, "ж" * 40])
def test_a_local_part_over_64_octets_is_refused(client: FlaskClient, local):
    response = client.post(URL, json=minimal_body(email=f"{local}@example.org"))
    assert refused_field(response) == ["email"]
    assert "too long" in response.get_json()["error"]["fields"]["email"][0]


@pytest.mark.parametrize("local", ["a" * 64, "é" * 32])
def test_a_local_part_of_64_octets_is_accepted(client: FlaskClient, local):
    response = client.post(URL, json=minimal_body(email=f"{local}@example.org"))
    assert response.status_code == 201, response.get_json()


def test_the_refusals_are_in_the_patients_language(client: FlaskClient):
    body = minimal_body(full_name="\u200b", email=f"{'é' * 33}@example.org")
    english = client.post(URL, json=body).get_json()["error"]["fields"]
    french = client.post(URL, json={**body, "preferred_language": "fr"}).get_json()["error"]
    assert set(french["fields"]) == {"full_name", "email"}
    for field in ("full_name", "email"):
        assert french["fields"][field] != english[field]
