"""Every error, from every layer, is the one JSON envelope."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

from flask.testing import FlaskClient

import quote_service.services
from quote_service.errors import Conflict
from tests.conftest import base_config
from tests.support.servers import Server


def envelope(response) -> dict:
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error"}
    assert {"code", "message"} <= set(body["error"])
    return body["error"]


def test_unknown_path_is_404(client: FlaskClient):
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert envelope(response)["code"] == "not_found"


def test_wrong_method_is_405(client: FlaskClient):
    response = client.delete("/api/v1/catalog")
    assert response.status_code == 405
    assert envelope(response)["code"] == "method_not_allowed"
    assert "GET" in response.headers["Allow"]


def test_unexpected_exception_is_a_json_500_without_details(postgres: Server, make_app, caplog):
    app = make_app(base_config(postgres.url))

    @app.route("/boom-for-test")
    def boom() -> str:
        # Built at run time, as a patient's value would be: the traceback's source
        # line shows the expression, never the value.
        address = "jan.peeters" + "@example.org"
        raise RuntimeError(f"secret detail: {address}")

    response = app.test_client().get("/boom-for-test")
    assert response.status_code == 500
    error = envelope(response)
    assert error["code"] == "internal_error"
    assert "secret" not in response.get_data(as_text=True)
    assert "Traceback" not in response.get_data(as_text=True)
    # Logged with where it happened, but not with what the message quoted.
    assert "RuntimeError" in caplog.text and "boom" in caplog.text
    assert "jan.peeters" not in caplog.text


def test_database_down_is_503(make_app):
    # Port 1 on loopback: nothing listens there, the connection is refused at once.
    app = make_app(base_config("postgresql://postgres@127.0.0.1:1/none"))
    response = app.test_client().get("/api/v1/catalog")
    assert response.status_code == 503
    assert envelope(response)["code"] == "service_unavailable"


def test_cors_preflight_from_an_unlisted_origin_gets_no_allowance(client: FlaskClient):
    response = client.options(
        "/api/v1/quote-requests",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "Access-Control-Allow-Origin" not in response.headers


def conflict_causes() -> list[type[Conflict]]:
    """Every subclass of Conflict, once each service module (where most live) is imported."""
    for module in pkgutil.iter_modules(quote_service.services.__path__):
        importlib.import_module(f"quote_service.services.{module.name}")

    def subclasses(cls: type[Conflict]) -> list[type[Conflict]]:
        return [c for sub in cls.__subclasses__() for c in (sub, *subclasses(sub))]

    return subclasses(Conflict)


def test_every_conflict_a_service_raises_has_a_code_of_its_own():
    """A client tells the causes of a 409 apart by the code, never by the message."""
    causes = conflict_causes()
    assert len(causes) >= 15
    assert [c.__name__ for c in causes if c.code == Conflict.code] == []


def test_every_conflict_code_is_in_the_readme_errors_table():
    readme = Path(__file__).resolve().parents[1] / "README.md"
    errors = readme.read_text().split("\n## Errors\n", 1)[1].split("\n## ", 1)[0]
    table = dict(re.findall(r"^\| `([a-z_]+)` \| (\d{3}) \|", errors, re.M))

    assert {c.code: "409" for c in conflict_causes()}.items() <= table.items()
