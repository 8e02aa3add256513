"""What the public side may see: /metrics behind METRICS_TOKEN, /docs and /openapi.json optional."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask

from quote_service.config import ConfigError, from_environment
from tests.conftest import base_config
from tests.support.servers import Server

TOKEN = "metrics-token-for-tests-0123456789"


@pytest.fixture
def guarded(make_app: Callable[[dict], Flask], postgres: Server) -> Flask:
    return make_app(base_config(postgres.url, METRICS_TOKEN=TOKEN))


def test_without_a_token_metrics_are_open(app: Flask):
    assert app.config["METRICS_TOKEN"] == ""
    assert app.test_client().get("/metrics").status_code == 200


@pytest.mark.parametrize(
    "header",
    [None, "Bearer wrong-token", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer "],
)
def test_with_a_token_a_scrape_without_it_is_refused(guarded: Flask, header: str | None):
    headers = {"Authorization": header} if header else {}
    response = guarded.test_client().get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.get_json()["error"]["code"] == "unauthorized"
    assert b"quote_service_" not in response.data


def test_with_the_token_the_scrape_is_served(guarded: Flask):
    response = guarded.test_client().get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert b"quote_service_outbox_pending_messages" in response.data


def test_the_token_guards_metrics_only(guarded: Flask):
    client = guarded.test_client()
    assert client.get("/healthz").status_code == 200
    assert client.get("/api/v1/catalog").status_code == 200


def test_api_docs_are_served_by_default(app: Flask):
    client = app.test_client()
    assert client.get("/openapi.json").status_code == 200
    assert client.get("/docs").status_code == 200


def test_public_api_docs_false_turns_both_off(make_app: Callable[[dict], Flask], postgres: Server):
    environment = from_environment({"PUBLIC_API_DOCS": "false"})
    app = make_app(base_config(postgres.url, PUBLIC_API_DOCS=environment["PUBLIC_API_DOCS"]))
    client = app.test_client()
    for path in ("/openapi.json", "/docs"):
        response = client.get(path)
        assert response.status_code == 404
        assert response.get_json()["error"]["code"] == "not_found"
    # The API itself is untouched.
    assert client.get("/api/v1/catalog").status_code == 200


def test_public_api_docs_must_be_a_boolean():
    with pytest.raises(ConfigError, match="PUBLIC_API_DOCS"):
        from_environment({"PUBLIC_API_DOCS": "maybe"})
