"""POST /api/v1/quote-requests: every bad input is a clear 4xx and writes nothing."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient

from quote_service.extensions import db
from quote_service.models import Event, OutboxMessage, QuoteRequest
from tests.payloads import valid_body

URL = "/api/v1/quote-requests"
REQUIRED = ["full_name", "email", "country_of_residence", "condition", "destination"]
PAST = (date.today() - timedelta(days=3)).isoformat()
FUTURE = (date.today() + timedelta(days=30)).isoformat()


def without(field: str) -> dict[str, Any]:
    body = valid_body()
    del body[field]
    return body


def assert_nothing_written() -> None:
    for model in (QuoteRequest, Event, OutboxMessage):
        assert db.session.execute(db.select(model)).first() is None, model.__name__


def assert_error(response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    error = response.get_json()["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    return error


@pytest.mark.parametrize("field", REQUIRED + ["consent_privacy"])
def test_missing_required_field(client: FlaskClient, app_context, field: str):
    error = assert_error(client.post(URL, json=without(field)), 422, "validation_error")
    assert list(error["fields"]) == [field]
    assert_nothing_written()


@pytest.mark.parametrize("field", REQUIRED)
def test_blank_required_field_counts_as_missing(client: FlaskClient, app_context, field: str):
    error = assert_error(
        client.post(URL, json=valid_body(**{field: "   ", "preferred_language": "en"})),
        422,
        "validation_error",
    )
    assert error["fields"][field] == ["This field is required."]
    assert_nothing_written()


INVALID_FIELDS = [
    # (field, value) -> that field is named in the error
    ("email", "not-an-email"),
    ("email", "jan@"),
    ("email", "jan@example.org\r\nBcc: victim@example.org"),
    ("email", "jan\x00@example.org"),
    ("full_name", "Jan\nPeeters"),
    ("full_name", "Jan\rPeeters"),
    ("full_name", "Jan\x00Peeters"),
    ("full_name", "x" * 201),
    ("full_name", 12345),
    ("full_name", ["Jan"]),
    ("full_name", {"first": "Jan"}),
    ("full_name", True),
    ("message", "x" * 5001),
    ("message", "Hello\x00world"),
    ("phone", "123"),
    ("phone", "not a phone"),
    ("phone", "+32 1"),
    ("country_of_residence", "XX"),
    ("country_of_residence", "Belgium"),
    ("country_of_residence", "BEL"),
    ("country_of_residence", 32),
    ("destination", "FR"),
    ("destination", "ZZ"),
    ("condition", "cancer"),
    ("condition", "STROKE"),
    ("treatment", "snake-oil"),
    ("preferred_language", "es"),
    ("patient_age", -1),
    ("patient_age", 121),
    ("patient_age", 4.5),
    ("patient_age", True),
    ("patient_age", "sixty"),
    ("patient_age", "1e3"),
    ("budget_eur", -5),
    ("budget_eur", "lots"),
    ("budget_eur", 10**20),
    ("travel_from", "2027-13-01"),
    ("travel_from", "next week"),
    ("travel_from", PAST),
    ("travel_to", PAST),
    ("travel_from", (date.today() + timedelta(days=6 * 365)).isoformat()),
    ("consent_privacy", False),
    ("consent_privacy", "off"),
    ("consent_privacy", "maybe"),
    ("consent_privacy", [True]),
    ("consent_marketing", "perhaps"),
    ("status", "quoted"),
    ("provider", 1),
    ("id", 7),
]


@pytest.mark.parametrize(("field", "value"), INVALID_FIELDS, ids=lambda v: repr(v)[:30])
def test_invalid_field_is_named(client: FlaskClient, app_context, field: str, value: Any):
    error = assert_error(
        client.post(URL, json=valid_body(**{field: value})), 422, "validation_error"
    )
    assert field in error["fields"], error
    assert all(isinstance(m, str) and m for m in error["fields"][field])
    assert_nothing_written()


def test_unknown_field_is_refused_by_name(client: FlaskClient, app_context):
    error = assert_error(
        client.post(URL, json=valid_body(status="closed", preferred_language="en")),
        422,
        "validation_error",
    )
    assert error["fields"] == {"status": ["Unknown field."]}


def test_travel_window_must_be_in_order(client: FlaskClient, app_context):
    start = date.today() + timedelta(days=40)
    body = valid_body(
        travel_from=start.isoformat(), travel_to=(start - timedelta(days=1)).isoformat()
    )
    error = assert_error(client.post(URL, json=body), 422, "validation_error")
    assert list(error["fields"]) == ["travel_to"]
    assert_nothing_written()


def test_condition_not_offered_at_destination(client: FlaskClient, app_context):
    body = valid_body(condition="diabetes-type-1", destination="AG")
    error = assert_error(client.post(URL, json=body), 422, "validation_error")
    assert list(error["fields"]) == ["condition"]
    assert "Antigua" in error["fields"]["condition"][0]
    assert_nothing_written()


def test_all_field_errors_are_reported_at_once(client: FlaskClient, app_context):
    body = valid_body(email="nope", patient_age=200, country_of_residence="QQ")
    error = assert_error(client.post(URL, json=body), 422, "validation_error")
    assert {"email", "patient_age", "country_of_residence"} <= set(error["fields"])


@pytest.mark.parametrize("payload", ["[]", '"text"', "42", "null", "true", "[{}]"])
def test_json_that_is_not_an_object(client: FlaskClient, app_context, payload: str):
    response = client.post(URL, data=payload, content_type="application/json")
    assert_error(response, 422, "validation_error")
    assert_nothing_written()


@pytest.mark.parametrize("payload", ["{", '{"full_name": }', "{'a': 1}", b"\xff\xfe{}"])
def test_malformed_json_is_400(client: FlaskClient, app_context, payload):
    assert_error(
        client.post(URL, data=payload, content_type="application/json"), 400, "bad_request"
    )
    assert_nothing_written()


def test_deeply_nested_json_is_400_not_500(client: FlaskClient, app_context):
    payload = '{"full_name": ' + "[" * 20000 + "]" * 20000 + "}"
    assert_error(
        client.post(URL, data=payload, content_type="application/json"), 400, "bad_request"
    )
    assert_nothing_written()


def test_deeply_nested_objects_are_400_not_500(client: FlaskClient, app_context):
    payload = '{"a":' * 9000 + "1" + "}" * 9000  # deep, yet under 64 KiB
    assert_error(
        client.post(URL, data=payload, content_type="application/json"), 400, "bad_request"
    )


def test_body_over_64_kib_is_413(client: FlaskClient, app_context):
    body = json.dumps(valid_body(message="x" * (65 * 1024)))
    response = client.post(URL, data=body, content_type="application/json")
    assert_error(response, 413, "payload_too_large")
    assert_nothing_written()


def test_form_body_over_64_kib_is_413(client: FlaskClient, app_context):
    response = client.post(URL, data={"message": "x" * (65 * 1024)})
    assert_error(response, 413, "payload_too_large")


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/xml", "multipart/form-data; boundary=x"]
)
def test_other_media_types_are_415(client: FlaskClient, app_context, content_type: str):
    response = client.post(URL, data="full_name=Jan", content_type=content_type)
    assert_error(response, 415, "unsupported_media_type")
    assert_nothing_written()


def test_empty_body_lists_the_required_fields(client: FlaskClient, app_context):
    error = assert_error(client.post(URL), 422, "validation_error")
    assert set(REQUIRED + ["consent_privacy"]) <= set(error["fields"])


def test_form_field_with_nul_byte_is_refused(client: FlaskClient, app_context):
    form = {key: str(value) for key, value in valid_body().items()}
    form["full_name"] = "Jan\x00"
    error = assert_error(client.post(URL, data=form), 422, "validation_error")
    assert "full_name" in error["fields"]
    assert_nothing_written()


def test_wrong_method_is_405_with_allow(client: FlaskClient):
    response = client.put(URL, json=valid_body())
    assert_error(response, 405, "method_not_allowed")
    assert "POST" in response.headers["Allow"]
