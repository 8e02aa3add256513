"""/api/v1/providers: coordinators read providers; admins create, change and deactivate them."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import delete

from quote_service.extensions import db
from quote_service.models import Provider, provider_condition
from quote_service.services import routing
from quote_service.services.seed import seed_catalog
from quote_service.services.users import revoke_user
from tests.conftest import Caller, empty_activity_tables
from tests.routing_fixtures import submit

URL = "/api/v1/providers"
SEEDED = {
    "brussels-neuro-sample",
    "ghent-regenerative-sample",
    "liege-metabolic-sample",
    "st-johns-cell-therapy-sample",
    "english-harbour-recovery-sample",
}
ITEM_FIELDS = {
    "id",
    "slug",
    "name",
    "destination",
    "conditions",
    "languages",
    "contact_email",
    "city",
    "daily_capacity",
    "weight",
    "active",
    "sample",
    "created_at",
    "updated_at",
    "routed_today",
    "response_rate",
    "median_response_hours",
}


def new_provider(**overrides: Any) -> dict[str, Any]:
    """A valid creation body; `None` drops a field."""
    body: dict[str, Any] = {
        "slug": "test-leuven-clinic",
        "name": "Leuven Test Clinic",
        "destination": "BE",
        "conditions": ["diabetes-type-1", "stroke"],
        "languages": ["de", "en"],
        "contact_email": "intake@leuven.test.example",
        "daily_capacity": 5,
        "weight": 1000,
    }
    body.update(overrides)
    return {key: value for key, value in body.items() if value is not None}


def provider_id(app: Flask, slug: str) -> int:
    with app.app_context():
        return db.session.execute(db.select(Provider.id).where(Provider.slug == slug)).scalar_one()


def error_of(response: Any) -> dict[str, Any]:
    body = response.get_json()
    assert set(body) == {"error"}
    return body["error"]


@pytest.fixture
def cleanup(app: Flask) -> Iterator[None]:
    """Remove the providers a test created (slugs `test-...`) and what points at them."""
    yield
    with app.app_context():
        db.session.remove()
        empty_activity_tables(db.session)
        ids = db.select(Provider.id).where(Provider.slug.startswith("test-"))
        db.session.execute(
            delete(provider_condition).where(provider_condition.c.provider_id.in_(ids))
        )
        db.session.execute(delete(Provider).where(Provider.slug.startswith("test-")))
        db.session.commit()


@pytest.fixture
def restore_seed(app: Flask) -> Iterator[None]:
    """Put the seeded providers back as the catalog file has them."""
    yield
    with app.app_context():
        db.session.remove()
        seed_catalog()


@pytest.fixture
def created(client: FlaskClient, admin: Caller, cleanup: None) -> dict[str, Any]:
    response = client.post(URL, json=new_provider(), headers=admin.headers)
    assert response.status_code == 201
    return response.get_json()


# --- Reading --------------------------------------------------------------


def test_list_shows_every_provider_with_its_fields(client: FlaskClient, coordinator: Caller):
    response = client.get(URL, headers=coordinator.headers)

    assert response.status_code == 200
    items = response.get_json()["items"]
    assert {item["slug"] for item in items} == SEEDED
    assert all(set(item) == ITEM_FIELDS for item in items)
    brussels = next(item for item in items if item["slug"] == "brussels-neuro-sample")
    assert brussels["destination"] == "BE"
    assert brussels["conditions"] == ["stroke", "stroke-rehabilitation"]
    assert brussels["languages"] == ["fr", "nl", "en"]
    assert brussels["contact_email"] == "intake@brussels-neuro.sample.example"
    assert brussels["city"] == "Brussels"
    assert (brussels["daily_capacity"], brussels["weight"]) == (20, 2)
    assert brussels["active"] is True
    assert brussels["sample"] is True
    assert brussels["routed_today"] == 0


def test_an_admin_may_list_too(client: FlaskClient, admin: Caller):
    response = client.get(URL, headers=admin.headers)
    assert response.status_code == 200
    assert len(response.get_json()["items"]) == len(SEEDED)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (
            {"destination": "AG"},
            {"st-johns-cell-therapy-sample", "english-harbour-recovery-sample"},
        ),
        (
            {"destination": "ag"},
            {"st-johns-cell-therapy-sample", "english-harbour-recovery-sample"},
        ),
        ({"condition": "diabetes-type-1"}, {"ghent-regenerative-sample", "liege-metabolic-sample"}),
        (
            {"destination": "BE", "condition": "stroke"},
            {"brussels-neuro-sample", "ghent-regenerative-sample"},
        ),
        ({"condition": "no-such-condition"}, set()),
        ({"active": "true"}, SEEDED),
    ],
)
def test_list_filters(
    client: FlaskClient, coordinator: Caller, query: dict[str, str], expected: set[str]
):
    response = client.get(URL, query_string=query, headers=coordinator.headers)
    assert response.status_code == 200
    assert {item["slug"] for item in response.get_json()["items"]} == expected


def test_list_filters_on_active(client: FlaskClient, admin: Caller, cleanup: None):
    body = new_provider(active=False)
    assert client.post(URL, json=body, headers=admin.headers).status_code == 201

    inactive = client.get(URL, query_string={"active": "false"}, headers=admin.headers)
    active = client.get(URL, query_string={"active": "true"}, headers=admin.headers)

    assert [item["slug"] for item in inactive.get_json()["items"]] == ["test-leuven-clinic"]
    assert {item["slug"] for item in active.get_json()["items"]} == SEEDED


def test_list_refuses_an_unknown_filter(client: FlaskClient, coordinator: Caller):
    response = client.get(URL, query_string={"destinaton": "BE"}, headers=coordinator.headers)
    assert response.status_code == 422
    assert "destinaton" in error_of(response)["fields"]


def test_get_one(client: FlaskClient, app: Flask, coordinator: Caller):
    pid = provider_id(app, "ghent-regenerative-sample")

    response = client.get(f"{URL}/{pid}", headers=coordinator.headers)

    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == ITEM_FIELDS
    assert body["id"] == pid
    assert body["slug"] == "ghent-regenerative-sample"
    assert body["conditions"] == [
        "stroke",
        "stroke-rehabilitation",
        "diabetes-type-1",
        "diabetes-type-2",
    ]


@pytest.mark.parametrize("pid", ["999999", "0", "99999999999", "99999999999999999999"])
def test_get_unknown_provider_is_404(client: FlaskClient, coordinator: Caller, pid: str):
    response = client.get(f"{URL}/{pid}", headers=coordinator.headers)
    assert response.status_code == 404
    error = error_of(response)
    assert error["code"] == "not_found"
    assert error["message"]


# --- Creating -------------------------------------------------------------


def test_create_answers_201_with_location(client: FlaskClient, admin: Caller, cleanup: None):
    response = client.post(URL, json=new_provider(), headers=admin.headers)

    assert response.status_code == 201
    body = response.get_json()
    assert set(body) == ITEM_FIELDS
    assert body["slug"] == "test-leuven-clinic"
    assert body["conditions"] == ["stroke", "diabetes-type-1"]  # catalog order
    assert body["languages"] == ["de", "en"]
    assert (body["active"], body["sample"], body["routed_today"]) == (True, False, 0)
    assert body["city"] is None  # optional
    assert body["created_at"] and body["updated_at"]
    assert response.headers["Location"].endswith(f"/api/v1/providers/{body['id']}")

    again = client.get(response.headers["Location"], headers=admin.headers)
    assert again.status_code == 200
    assert again.get_json() == body


def test_a_created_provider_is_routed_to(
    client: FlaskClient, app: Flask, created: dict[str, Any], coordinator: Caller
):
    # Weight 1000 and German: it beats the seeded clinics for a German speaker.
    with app.app_context():
        request = submit(destination="BE", condition="diabetes-type-1", preferred_language="de")
        decision = routing.decide(request)
        db.session.commit()
        assert decision.provider_id == created["id"]

    response = client.get(f"{URL}/{created['id']}", headers=coordinator.headers)
    assert response.get_json()["routed_today"] == 1


def test_create_and_changes_are_logged_without_personal_data(
    client: FlaskClient, admin: Caller, cleanup: None, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO, logger="quote_service.services.providers")

    created = client.post(URL, json=new_provider(), headers=admin.headers).get_json()
    client.patch(f"{URL}/{created['id']}", json={"weight": 3}, headers=admin.headers)
    client.delete(f"{URL}/{created['id']}", headers=admin.headers)

    messages = [r.getMessage() for r in caplog.records if r.name.endswith("providers")]
    assert len(messages) == 3
    assert all(r.levelno == logging.INFO for r in caplog.records if r.name.endswith("providers"))
    for verb, message in zip(("created", "updated", "deactivated"), messages, strict=True):
        assert verb in message
        assert "test-leuven-clinic" in message
        assert f"user {admin.id}" in message
        assert "intake@leuven.test.example" not in message
        assert admin.email not in message


def test_duplicate_slug_is_409(client: FlaskClient, admin: Caller, cleanup: None):
    body = new_provider(slug="brussels-neuro-sample")
    response = client.post(URL, json=body, headers=admin.headers)
    assert response.status_code == 409
    assert error_of(response)["code"] == "slug_taken"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"contact_email": "not-an-email"}, "contact_email"),
        ({"contact_email": "intake@"}, "contact_email"),
        ({"slug": "Test Upper"}, "slug"),
        ({"slug": None}, "slug"),
        ({"name": ""}, "name"),
        ({"conditions": []}, "conditions"),
        ({"languages": []}, "languages"),
        ({"weight": 0}, "weight"),
        ({"weight": 1001}, "weight"),
        ({"weight": 2.5}, "weight"),
        ({"daily_capacity": -1}, "daily_capacity"),
        ({"active": "maybe"}, "active"),
        ({"destination": "Belgium"}, "destination"),
        ({"clinic_secret": "x"}, "clinic_secret"),
        ({"sample": True}, "sample"),
        ({"id": 7}, "id"),
    ],
)
def test_create_refuses_invalid_fields(
    client: FlaskClient, admin: Caller, cleanup: None, overrides: dict[str, Any], field: str
):
    response = client.post(URL, json=new_provider(**overrides), headers=admin.headers)

    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "validation_error"
    assert field in error["fields"]


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        # Antigua does not offer type 1 diabetes.
        ({"destination": "AG"}, "conditions", "diabetes-type-1 is not offered at AG"),
        ({"conditions": ["stroke", "no-such-thing"]}, "conditions", "no-such-thing"),
        ({"languages": ["en", "xx"]}, "languages", "xx"),
        ({"destination": "FR"}, "destination", "do not offer"),
    ],
)
def test_create_checks_the_catalog(
    client: FlaskClient,
    app: Flask,
    admin: Caller,
    cleanup: None,
    overrides: dict[str, Any],
    field: str,
    words: str,
):
    response = client.post(URL, json=new_provider(**overrides), headers=admin.headers)

    assert response.status_code == 422
    error = error_of(response)
    assert list(error["fields"]) == [field]
    assert any(words in message for message in error["fields"][field])
    with app.app_context():
        assert (
            db.session.execute(
                db.select(Provider).where(Provider.slug == "test-leuven-clinic")
            ).first()
            is None
        )


def test_every_catalog_error_is_named_at_once(client: FlaskClient, admin: Caller, cleanup: None):
    body = new_provider(conditions=["nope"], languages=["xx"], destination="FR")
    response = client.post(URL, json=body, headers=admin.headers)
    assert response.status_code == 422
    assert set(error_of(response)["fields"]) == {"destination", "conditions", "languages"}


def test_a_schema_error_and_a_catalog_error_come_back_in_one_422(
    client: FlaskClient, app: Flask, admin: Caller, cleanup: None
):
    body = new_provider(weight=0, conditions=["stroke", "no-such-thing"])
    response = client.post(URL, json=body, headers=admin.headers)

    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "validation_error"
    assert set(error["fields"]) == {"weight", "conditions"}
    assert error["fields"]["conditions"] == ["Unknown condition: no-such-thing."]
    with app.app_context():
        assert (
            db.session.execute(
                db.select(Provider).where(Provider.slug == "test-leuven-clinic")
            ).first()
            is None
        )


def test_an_unknown_destination_is_named_beside_the_schema_errors(
    client: FlaskClient, admin: Caller, cleanup: None
):
    body = new_provider(destination="FR", contact_email="nope", clinic_secret="x")
    response = client.post(URL, json=body, headers=admin.headers)

    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "validation_error"
    assert set(error["fields"]) == {"destination", "contact_email", "clinic_secret"}
    assert error["fields"]["destination"] == ["We do not offer this destination."]


def test_a_condition_not_offered_is_named_beside_the_schema_errors(
    client: FlaskClient, admin: Caller, cleanup: None
):
    # Antigua does not offer type 1 diabetes; the languages are missing altogether.
    response = client.post(
        URL, json=new_provider(destination="AG", languages=None), headers=admin.headers
    )

    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "validation_error"
    assert set(error["fields"]) == {"languages", "conditions"}
    assert "diabetes-type-1 is not offered at AG." in error["fields"]["conditions"]


def test_a_field_refused_for_its_shape_is_not_judged_by_the_catalog_too(
    client: FlaskClient, admin: Caller, cleanup: None
):
    # The destination is no country code: its conditions cannot be checked against it,
    # but whether each exists can.
    body = new_provider(destination="Belgium", conditions=["stroke", "no-such-thing"])
    response = client.post(URL, json=body, headers=admin.headers)

    assert response.status_code == 422
    fields = error_of(response)["fields"]
    assert set(fields) == {"destination", "conditions"}
    assert fields["conditions"] == ["Unknown condition: no-such-thing."]
    assert not any("offer" in message for message in fields["destination"])


# --- Updating and deactivating --------------------------------------------


def test_patch_changes_only_the_fields_given(
    client: FlaskClient, app: Flask, admin: Caller, restore_seed: None
):
    pid = provider_id(app, "english-harbour-recovery-sample")
    before = client.get(f"{URL}/{pid}", headers=admin.headers).get_json()

    response = client.patch(
        f"{URL}/{pid}",
        json={"weight": 7, "languages": ["en", "fr", "nl"], "conditions": ["stroke"]},
        headers=admin.headers,
    )

    assert response.status_code == 200
    body = response.get_json()
    assert (body["weight"], body["languages"], body["conditions"]) == (
        7,
        ["en", "fr", "nl"],
        ["stroke"],
    )
    assert body["updated_at"] > before["updated_at"]
    unchanged = ("slug", "name", "destination", "contact_email", "daily_capacity", "created_at")
    assert {k: body[k] for k in unchanged} == {k: before[k] for k in unchanged}
    assert client.get(f"{URL}/{pid}", headers=admin.headers).get_json() == body


def test_patch_may_move_a_provider_with_its_conditions(
    client: FlaskClient, app: Flask, admin: Caller, restore_seed: None
):
    pid = provider_id(app, "liege-metabolic-sample")  # treats diabetes-type-1, not offered at AG
    url = f"{URL}/{pid}"

    alone = client.patch(url, json={"destination": "AG"}, headers=admin.headers)
    assert alone.status_code == 422
    assert "diabetes-type-1 is not offered at AG." in error_of(alone)["fields"]["destination"]

    both = {"destination": "AG", "conditions": ["diabetes-type-2"]}
    moved = client.patch(url, json=both, headers=admin.headers)
    assert moved.status_code == 200
    assert (moved.get_json()["destination"], moved.get_json()["conditions"]) == (
        "AG",
        ["diabetes-type-2"],
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"slug": "renamed"}, "slug"),
        ({"weight": 0}, "weight"),
        ({"contact_email": "nope"}, "contact_email"),
        ({"conditions": ["diabetes-type-1"]}, "conditions"),  # not offered at AG
        ({"languages": ["xx"]}, "languages"),
        ({"name": None}, "name"),
    ],
)
def test_patch_validates_like_create(
    client: FlaskClient, app: Flask, admin: Caller, restore_seed: None, body: dict, field: str
):
    pid = provider_id(app, "st-johns-cell-therapy-sample")
    before = client.get(f"{URL}/{pid}", headers=admin.headers).get_json()

    response = client.patch(f"{URL}/{pid}", json=body, headers=admin.headers)

    assert response.status_code == 422
    assert field in error_of(response)["fields"]
    assert client.get(f"{URL}/{pid}", headers=admin.headers).get_json() == before


def test_patch_names_schema_and_catalog_errors_at_once(
    client: FlaskClient, app: Flask, admin: Caller, restore_seed: None
):
    pid = provider_id(app, "st-johns-cell-therapy-sample")  # at AG
    before = client.get(f"{URL}/{pid}", headers=admin.headers).get_json()

    body = {"weight": 0, "conditions": ["diabetes-type-1"], "languages": ["xx"]}
    response = client.patch(f"{URL}/{pid}", json=body, headers=admin.headers)

    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "validation_error"
    assert set(error["fields"]) == {"weight", "conditions", "languages"}
    assert "diabetes-type-1 is not offered at AG." in error["fields"]["conditions"]
    assert client.get(f"{URL}/{pid}", headers=admin.headers).get_json() == before


def test_patch_unknown_provider_is_404(client: FlaskClient, admin: Caller):
    response = client.patch(f"{URL}/999999", json={"weight": 2}, headers=admin.headers)
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


def test_delete_deactivates_and_keeps_the_row(
    client: FlaskClient, app: Flask, admin: Caller, created: dict[str, Any]
):
    url = f"{URL}/{created['id']}"

    response = client.delete(url, headers=admin.headers)

    assert response.status_code == 200
    assert response.get_json()["active"] is False
    with app.app_context():
        provider = db.session.get(Provider, created["id"])
        assert provider is not None
        assert provider.active is False
        assert [c.slug for c in provider.conditions] == ["stroke", "diabetes-type-1"]
    assert client.get(url, headers=admin.headers).get_json()["active"] is False
    # Deactivating again changes nothing and is not an error.
    assert client.delete(url, headers=admin.headers).status_code == 200


def test_delete_unknown_provider_is_404(client: FlaskClient, admin: Caller):
    response = client.delete(f"{URL}/999999", headers=admin.headers)
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


def test_a_deactivated_provider_is_not_routed_to(
    client: FlaskClient, app: Flask, admin: Caller, created: dict[str, Any]
):
    client.delete(f"{URL}/{created['id']}", headers=admin.headers)
    with app.app_context():
        request = submit(destination="BE", condition="diabetes-type-1", preferred_language="de")
        assert routing.decide(request).provider_id != created["id"]
        db.session.rollback()


# --- Who may ----------------------------------------------------------------

ENDPOINTS = [
    ("GET", URL),
    ("GET", f"{URL}/1"),
    ("POST", URL),
    ("PATCH", f"{URL}/1"),
    ("DELETE", f"{URL}/1"),
]


@pytest.mark.parametrize(("method", "url"), ENDPOINTS)
@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer qs_not-a-real-token"}, {"Authorization": "Basic abc"}],
    ids=["no-token", "wrong-token", "wrong-scheme"],
)
def test_without_a_valid_token_is_401(
    client: FlaskClient, method: str, url: str, headers: dict[str, str]
):
    response = client.open(url, method=method, json=new_provider(), headers=headers)
    assert response.status_code == 401
    assert error_of(response)["code"] == "unauthorized"
    assert response.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(("method", "url"), ENDPOINTS)
def test_a_revoked_token_is_401(
    client: FlaskClient, app: Flask, admin: Caller, method: str, url: str
):
    with app.app_context():
        revoke_user(admin.email)
    response = client.open(url, method=method, json=new_provider(), headers=admin.headers)
    assert response.status_code == 401
    assert error_of(response)["code"] == "unauthorized"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "", new_provider()),
        ("PATCH", "/{id}", {"weight": 9}),
        ("DELETE", "/{id}", None),
    ],
)
def test_a_coordinator_may_not_change_providers(
    client: FlaskClient,
    app: Flask,
    coordinator: Caller,
    cleanup: None,
    method: str,
    path: str,
    body: dict[str, Any] | None,
):
    pid = provider_id(app, "brussels-neuro-sample")
    before = client.get(URL, headers=coordinator.headers).get_json()

    url = URL + path.format(id=pid)
    response = client.open(url, method=method, json=body, headers=coordinator.headers)

    assert response.status_code == 403
    assert error_of(response)["code"] == "forbidden"
    assert client.get(URL, headers=coordinator.headers).get_json() == before


# --- Documentation ----------------------------------------------------------


def test_openapi_documents_who_may_call_each_endpoint(client: FlaskClient):
    paths = client.get("/openapi.json").get_json()["paths"]
    many, one = paths["/api/v1/providers"], paths["/api/v1/providers/{provider_id}"]

    assert many["get"]["security"] == [{"coordinatorToken": []}]
    assert one["get"]["security"] == [{"coordinatorToken": []}]
    for operation in (many["post"], one["patch"], one["delete"]):
        assert operation["security"] == [{"adminToken": []}]
    assert "never deleted" in one["delete"]["summary"] + one["delete"].get("description", "")


def test_a_clinic_has_a_city_set_on_create_and_by_patch(
    client: FlaskClient, admin: Caller, cleanup: None
):
    response = client.post(URL, json=new_provider(city="Leuven"), headers=admin.headers)
    assert response.status_code == 201
    body = response.get_json()
    assert body["city"] == "Leuven"

    patched = client.patch(f"{URL}/{body['id']}", json={"city": "Heverlee"}, headers=admin.headers)
    assert patched.status_code == 200
    assert patched.get_json()["city"] == "Heverlee"

    too_long = client.patch(f"{URL}/{body['id']}", json={"city": "x" * 101}, headers=admin.headers)
    assert too_long.status_code == 422
    assert too_long.get_json()["error"]["code"] == "validation_error"
    assert "city" in too_long.get_json()["error"]["fields"]
