"""Every list refuses a query parameter it does not know: a typo is a 422 naming it."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from tests.conftest import Caller

LISTS = [
    ("/api/v1/quote-requests", "coordinator"),
    ("/api/v1/providers", "coordinator"),
    ("/api/v1/statistics", "coordinator"),
    ("/api/v1/users", "coordinator"),
    ("/api/v1/access-log", "admin"),
]


@pytest.mark.parametrize(("path", "role"), LISTS)
@pytest.mark.parametrize("parameter", ["destinaton", "treatment", "colour"])
def test_an_unknown_parameter_is_a_422_naming_it(
    client: FlaskClient, coordinator: Caller, admin: Caller, path: str, role: str, parameter: str
):
    caller = admin if role == "admin" else coordinator
    response = client.get(path, query_string={parameter: "x"}, headers=caller.headers)
    assert response.status_code == 422, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] == "validation_error"
    assert list(error["fields"]) == [parameter]


def test_the_queue_names_each_unknown_parameter(client: FlaskClient, coordinator: Caller):
    response = client.get(
        "/api/v1/quote-requests?destinaton=AG&treatment=msc&status=received",
        headers=coordinator.headers,
    )
    assert response.status_code == 422
    assert set(response.get_json()["error"]["fields"]) == {"destinaton", "treatment"}


def test_known_parameters_still_filter(client: FlaskClient, coordinator: Caller):
    response = client.get(
        "/api/v1/quote-requests", query_string={"destination": "AG"}, headers=coordinator.headers
    )
    assert response.status_code == 200


def test_the_public_catalog_ignores_a_cache_buster(client: FlaskClient):
    # Websites fetch it with parameters of their own; it is no list to filter.
    assert client.get("/api/v1/catalog", query_string={"_": "1700000000"}).status_code == 200
