"""CORS headers only for an allowed Origin that was sent; forwarded addresses that
are not IP addresses are refused behind trusted proxies."""

from __future__ import annotations

import pytest

from tests.conftest import base_config
from tests.payloads import minimal_body

ALLOWED = "https://www.example.org"
CATALOG = "/api/v1/catalog"
URL = "/api/v1/quote-requests"


@pytest.fixture
def cors_client(postgres, app, make_app):
    return make_app(base_config(postgres.url, CORS_ORIGINS=[ALLOWED])).test_client()


def test_no_origin_gets_no_cors_headers(cors_client):
    response = cors_client.get(CATALOG)
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response.headers
    assert "Access-Control-Expose-Headers" not in response.headers


def test_an_origin_not_allowed_gets_no_cors_headers(cors_client):
    response = cors_client.get(CATALOG, headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in response.headers


def test_an_allowed_origin_is_answered_with_itself(cors_client):
    response = cors_client.get(CATALOG, headers={"Origin": ALLOWED})
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED


@pytest.fixture
def proxied_client(postgres, app, make_app):
    return make_app(base_config(postgres.url, TRUSTED_PROXY_COUNT=1)).test_client()


@pytest.mark.parametrize(
    "forwarded", ["not-an-ip", "203.0.113.7, evil", "127.0.0.1<script>", "::1]", "unknown"]
)
def test_a_forwarded_address_that_is_not_an_ip_is_refused(proxied_client, forwarded):
    response = proxied_client.post(URL, json=minimal_body(), headers={"X-Forwarded-For": forwarded})
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "invalid_client_address"


@pytest.mark.parametrize("forwarded", ["203.0.113.7", "10.0.0.1, 198.51.100.2", "2001:db8::7"])
def test_a_forwarded_ip_address_is_served(proxied_client, forwarded):
    response = proxied_client.post(URL, json=minimal_body(), headers={"X-Forwarded-For": forwarded})
    assert response.status_code == 201, response.get_json()
