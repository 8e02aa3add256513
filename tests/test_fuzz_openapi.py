"""Fuzzing every operation of the app's own OpenAPI with schemathesis.

The schema is read from an app built at import (schemathesis collects one test
per operation from it); every request goes to the session's app, with its
PostgreSQL and the demo catalog, as an admin.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import pytest
import schemathesis
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.core.parameters import ParameterLocation

from quote_service import create_app
from quote_service.extensions import db
from quote_service.models import Provider, User
from quote_service.services import pipeline
from quote_service.services.users import TOKEN_PREFIX, hash_token
from tests.conftest import Caller, base_config, reset_database
from tests.payloads import minimal_body, valid_body
from tests.routing_fixtures import received_row
from tests.test_workflow_api import stored

MAX_EXAMPLES = 25

# The admin's token, fixed at import because schemathesis builds some cases
# while collecting; `fuzz_state` gives it to the admin it creates.
TOKEN = TOKEN_PREFIX + secrets.token_urlsafe(32)

CONFIG = {
    "auth": {"openapi": {"coordinatorToken": {"bearer": TOKEN}, "adminToken": {"bearer": TOKEN}}},
    "generation": {"mode": "all", "deterministic": True, "database": "none"},
    "checks": {
        # A valid request may still break a rule JSON Schema cannot state: one
        # only the database knows (catalog slugs, languages, a request's state
        # and version) or one across fields (travel dates in order, consent
        # given). Such refusals are 409, 412 or 422; a 400 or 415 for
        # valid data still fails.
        "positive_data_acceptance": {
            "expected-statuses": ["2xx", "3xx", "401", "403", "404", "409", "412", "422"]
        },
    },
}

# Ids that exist while a test runs, from `fuzz_state`.
KNOWN_IDS: dict[str, list[Any]] = {}
# Bodies that pass every rule, by operation.
KNOWN_BODIES: dict[str, Callable[[], dict[str, Any]]] = {"POST /api/v1/quote-requests": valid_body}

schema = schemathesis.openapi.from_wsgi(
    "/openapi.json",
    # An app that only serves its OpenAPI: it never touches its database.
    create_app(base_config("sqlite://")),
    config=schemathesis.Config.from_dict(CONFIG),
)


@schema.hook
def flatmap_case(context: Any, case: Any) -> Any:
    """Now and then an id that exists, or a body that passes, so the fuzzer gets past 404 and 422.

    Only positive parts are replaced: a negative case stays as invalid as it was made.
    """
    if case.meta is None:
        return st.just(case)
    changes: list[Callable[[], None]] = [lambda: None]
    if case.path_parameters and not case.meta.is_negative_at(ParameterLocation.PATH):
        changes += [
            partial(case.path_parameters.__setitem__, name, value)
            for name, values in KNOWN_IDS.items()
            if name in case.path_parameters
            for value in values
        ]
    body = KNOWN_BODIES.get(case.operation.label)
    if body is not None and not case.meta.is_negative_at(ParameterLocation.BODY):
        changes.append(partial(setattr, case, "body", body()))

    def changed(change: Callable[[], None]) -> Any:
        change()
        return case

    return st.sampled_from(changes).map(changed)


@pytest.fixture(scope="module")
def restore_catalog(app: Flask) -> Iterator[None]:
    yield
    # The fuzzer creates, changes and deactivates providers of the session's
    # catalog; later tests need it as seeded.
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    reset_database(app)


@pytest.fixture
def fuzz_state(app: Flask, admin: Caller, restore_catalog: None) -> Iterator[None]:
    """Two requests (one routed and acknowledged) and the admin, for the fuzzer to use."""
    client = app.test_client()
    references = []
    with app.app_context():
        for destination, condition in (("BE", "stroke"), ("AG", "diabetes-type-2")):
            body = minimal_body(destination=destination, condition=condition)
            response = client.post("/api/v1/quote-requests", json=body)
            references.append(response.get_json()["reference"])
        pipeline.process_received(received_row(stored(references[0])).id)
        provider_ids = list(db.session.execute(db.select(Provider.id)).scalars())
        user = db.session.get_one(User, admin.id)
        user.token_sha256 = hash_token(TOKEN)
        db.session.commit()
        db.session.remove()
    KNOWN_IDS.update(reference=references, provider_id=provider_ids)
    yield
    KNOWN_IDS.clear()


@pytest.fixture
def answers() -> Iterator[list[int]]:
    """The statuses of one operation's fuzzing, which must not all be refusals of the token."""
    statuses: list[int] = []
    yield statuses
    assert statuses, "the fuzzer sent nothing"
    assert set(statuses) - {401, 403}, "the fuzzer never got past authentication"


@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    # The fixtures hold for the whole operation on purpose (the admin, the ids);
    # requests to PostgreSQL are slower than Hypothesis expects of a test.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@schema.parametrize()
def test_every_operation_survives_fuzzing_and_matches_its_documentation(
    case: Any, app: Flask, fuzz_state: None, answers: list[int]
) -> None:
    # Every check: no server error, status code, content type, headers and
    # body as documented, valid data accepted, invalid data refused, auth.
    response = case.call_and_validate(app=app)
    answers.append(response.status_code)


def request_body_schemas(openapi: dict[str, Any]) -> dict[tuple[str, str, str], dict[str, Any]]:
    """Every request body's schema, by (method, path, media type), with its $ref resolved."""
    components = openapi["components"]["schemas"]
    found = {}
    for path, operations in openapi["paths"].items():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "requestBody" not in operation:
                continue
            for media_type, content in operation["requestBody"]["content"].items():
                body_schema = content["schema"]
                name = body_schema.get("$ref", "").rpartition("/")[2]
                found[(method.upper(), path, media_type)] = components.get(name, body_schema)
    return found


def test_the_intake_body_refuses_unknown_fields_in_the_openapi(client: FlaskClient) -> None:
    bodies = request_body_schemas(client.get("/openapi.json").get_json())

    for media_type in ("application/json", "application/x-www-form-urlencoded"):
        intake = bodies[("POST", "/api/v1/quote-requests", media_type)]
        assert intake["additionalProperties"] is False, media_type
        assert {"full_name", "email", "consent_privacy", "website"} <= set(intake["properties"])


def test_every_request_body_refuses_unknown_fields_in_the_openapi(client: FlaskClient) -> None:
    bodies = request_body_schemas(client.get("/openapi.json").get_json())

    assert len(bodies) >= 8  # intake (JSON and form), five queue actions, providers...
    assert {key: body.get("additionalProperties") for key, body in bodies.items()} == {
        key: False for key in bodies
    }


def test_an_illegal_move_answers_its_documented_409(app: Flask, fuzz_state: None) -> None:
    """The 409 of a move the workflow forbids carries `allowed`; the OpenAPI says so."""
    reference = KNOWN_IDS["reference"][0]  # routed
    headers = {"Authorization": f"Bearer {TOKEN}"}
    read = app.test_client().get(f"/api/v1/quote-requests/{reference}", headers=headers)
    operation = schema["/api/v1/quote-requests/{reference}/transitions"]["POST"]
    case = operation.Case(
        path_parameters={"reference": reference},
        headers=headers,
        body={"to": "closed", "version": read.get_json()["version"]},
        media_type="application/json",
    )

    response = case.call(app=app)

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "transition_not_allowed"
    assert response.json()["error"]["allowed"] == ["in_review", "rejected", "withdrawn", "spam"]
    case.validate_response(response)


def test_a_json_action_refuses_a_body_of_another_media_type(app: Flask, fuzz_state: None) -> None:
    """415 as documented, rather than reading no body and resending the acknowledgement."""
    reference = KNOWN_IDS["reference"][0]  # acknowledged, so a resend would go through
    operation = schema["/api/v1/quote-requests/{reference}/acknowledgement"]["POST"]
    case = operation.Case(
        path_parameters={"reference": reference},
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "text/plain"},
        body="note=resend",
        media_type="text/plain",
    )

    response = case.call(app=app)

    assert response.status_code == 415
    assert response.json()["error"] == {
        "code": "unsupported_media_type",
        "message": "Send the body as application/json.",
    }
    case.validate_response(response)


def test_an_if_match_of_other_digits_than_ascii_is_a_422(app: Flask, fuzz_state: None) -> None:
    """ "²" passes str.isdigit() but not int(): refused by name, not a 500."""
    reference = KNOWN_IDS["reference"][0]
    response = app.test_client().post(
        f"/api/v1/quote-requests/{reference}/transitions",
        json={"to": "in_review"},
        headers={"Authorization": f"Bearer {TOKEN}", "If-Match": '"²"'},
    )

    assert response.status_code == 422
    assert set(response.get_json()["error"]["fields"]) == {"If-Match"}
