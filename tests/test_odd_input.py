"""Odd input an attacker tries is a 400 or 422 in the error shape, never a 500.

Lone surrogates and 5,000-digit integers in JSON bodies, NaN; queue cursors
and time bounds whose values no database or datetime can hold.
"""

from __future__ import annotations

import base64
import json

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.conftest import Caller
from tests.payloads import minimal_body

URL = "/api/v1/quote-requests"


def post_raw_json(
    client: FlaskClient, text: str, url: str = URL, headers: dict[str, str] | None = None
) -> TestResponse:
    return client.post(
        url, data=text.encode(), content_type="application/json", headers=headers or {}
    )


def assert_malformed(response, *words: str) -> None:
    assert response.status_code == 400, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["code"] == "bad_request"
    for word in words:
        assert word in error["message"]


def body_text(**raw_values: str) -> str:
    """A valid body as JSON text, with some values replaced by raw JSON text."""
    body = minimal_body()
    for name in raw_values:
        body[name] = f"@@{name}@@"
    text = json.dumps(body)
    for name, raw in raw_values.items():
        text = text.replace(f'"@@{name}@@"', raw)
    return text


@pytest.mark.parametrize("raw", [r'"J\ud800n"', r'"x\udfffy"', r'"\ud800"'])
@pytest.mark.parametrize("field", ["full_name", "message", "website", "condition"])
def test_a_lone_surrogate_in_any_string_field_is_400(client, field, raw):
    response = post_raw_json(client, body_text(**{field: raw}))
    assert_malformed(response, "surrogate")


def test_a_lone_surrogate_in_a_key_is_400(client):
    text = json.dumps(minimal_body())[:-1] + r', "\ud800": 1}'
    assert_malformed(post_raw_json(client, text), "surrogate")


def test_a_surrogate_pair_is_text_and_welcome(client):
    # An emoji written as an escaped pair is valid JSON and valid text.
    response = post_raw_json(client, body_text(message=r'"Thank you \ud83d\ude42"'))
    assert response.status_code == 201, response.get_json()


def test_a_lone_surrogate_on_a_coordinator_endpoint_is_400(client, coordinator: Caller):
    reference = client.post(URL, json=minimal_body()).get_json()["reference"]
    response = post_raw_json(
        client, r'{"note": "x\udfffy"}', f"{URL}/{reference}/notes", coordinator.headers
    )
    assert_malformed(response, "surrogate")


@pytest.mark.parametrize("field", ["patient_age", "budget_eur", "consent_privacy"])
def test_a_5000_digit_integer_is_400(client, field):
    response = post_raw_json(client, body_text(**{field: "1" + "0" * 4999}))
    assert_malformed(response, "digits")


@pytest.mark.parametrize("raw", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_400(client, raw):
    assert_malformed(post_raw_json(client, body_text(patient_age=raw)), "NaN")


def cursor_of(created_at: object, id_: object, sort: str = "newest") -> str:
    raw = json.dumps([created_at, id_, sort]).replace("Infinity", "1e999")
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        cursor_of("2026-01-01T00:00:00+00:00", 1e40),
        cursor_of("2026-01-01T00:00:00+00:00", float("inf")),  # 1e999 in the JSON
        cursor_of("2026-01-01T00:00:00+00:00", 2**31),
        cursor_of("2026-01-01T00:00:00+00:00", True),
        cursor_of("9999-12-31T23:59:59-14:00", 1),
        cursor_of("0001-01-01T00:00:00+14:00", 1),
    ],
    ids=["id-1e40", "id-1e999", "id-2**31", "id-true", "time-9999-14:00", "time-0001+14:00"],
)
def test_a_cursor_out_of_range_is_422(client, coordinator: Caller, cursor):
    response = client.get(URL, query_string={"cursor": cursor}, headers=coordinator.headers)
    assert response.status_code == 422, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["code"] == "validation_error"
    assert list(error["fields"]) == ["cursor"]


@pytest.mark.parametrize("url", [URL, "/api/v1/statistics"])
@pytest.mark.parametrize("bound", ["created_after", "created_before"])
@pytest.mark.parametrize("moment", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"])
def test_a_time_bound_past_the_calendar_is_422(client, coordinator: Caller, url, bound, moment):
    response = client.get(url, query_string={bound: moment}, headers=coordinator.headers)
    assert response.status_code == 422, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["code"] == "validation_error"
    assert list(error["fields"]) == [bound]


@pytest.mark.parametrize("url", [URL, "/api/v1/statistics"])
def test_the_last_moment_python_holds_is_still_a_bound(client, coordinator: Caller, url):
    response = client.get(
        url,
        query_string={"created_before": "9999-12-31T23:59:59+00:00"},
        headers=coordinator.headers,
    )
    assert response.status_code == 200, response.get_data(as_text=True)


def test_refused_json_numbers_are_told_in_the_patients_language(client):
    nan = post_raw_json(client, body_text(patient_age="NaN"), headers={"Accept-Language": "fr"})
    assert_malformed(nan, "ne sont pas des nombres JSON")
    long = post_raw_json(
        client, body_text(patient_age="1" + "0" * 4999), headers={"Accept-Language": "de"}
    )
    assert_malformed(long, "dürfen höchstens", "Ziffern")
