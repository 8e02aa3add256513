"""People, not ids: the users list, /me, display names, assignment by email, the notice."""

from __future__ import annotations

import itertools

from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from quote_service.extensions import db
from quote_service.models import Event, Notification, OutboxMessage, QuoteRequest, User
from quote_service.services import notifications
from quote_service.services.users import create_user, revoke_user
from tests.conftest import Caller
from tests.payloads import minimal_body

URL = "/api/v1/quote-requests"
NUMBERS = itertools.count()


def post(client: FlaskClient, **overrides) -> str:
    overrides.setdefault("email", f"people.{next(NUMBERS)}@example.org")
    response = client.post(URL, json=minimal_body(**overrides))
    assert response.status_code == 201, response.get_json()
    return response.get_json()["reference"]


def assign(client: FlaskClient, caller: Caller, reference: str, assignee):
    return client.post(
        f"{URL}/{reference}/assignment", json={"assignee": assignee}, headers=caller.headers
    )


def notices(app: Flask) -> list[Notification]:
    with app.app_context():
        return list(
            db.session.execute(
                db.select(Notification).where(Notification.kind == "assignment_notice")
            ).scalars()
        )


def test_users_list_names_emails_roles_and_state(client, app, coordinator: Caller, admin: Caller):
    with app.app_context():
        create_user("ines@quote-service.example", "coordinator", name="Inès Martin")
        revoke_user("ines@quote-service.example")
    body = client.get("/api/v1/users", headers=coordinator.headers).get_json()
    by_email = {user["email"]: user for user in body["items"]}
    assert by_email["ines@quote-service.example"] == {
        "id": by_email["ines@quote-service.example"]["id"],
        "name": "Inès Martin",
        "email": "ines@quote-service.example",
        "role": "coordinator",
        "active": False,
    }
    assert by_email[admin.email]["role"] == "admin"
    assert by_email[admin.email]["active"] is True
    active = client.get("/api/v1/users?active=true", headers=coordinator.headers).get_json()
    assert "ines@quote-service.example" not in {user["email"] for user in active["items"]}


def test_me_is_the_token_s_user(client, coordinator: Caller):
    body = client.get("/api/v1/me", headers=coordinator.headers).get_json()
    assert body["id"] == coordinator.id
    assert body["email"] == coordinator.email
    assert body["role"] == "coordinator"


def test_users_and_me_need_a_token(client):
    for path in ("/api/v1/users", "/api/v1/me"):
        assert client.get(path).status_code == 401


def test_users_create_takes_a_display_name(runner: FlaskCliRunner, app: Flask):
    result = runner.invoke(
        args=[
            "users",
            "create",
            "--email",
            "anna@quote-service.example",
            "--role",
            "coordinator",
            "--name",
            "  Anna   Müller ",
        ]
    )
    assert result.exit_code == 0, result.output
    with app.app_context():
        user = db.session.execute(
            db.select(User).where(User.email == "anna@quote-service.example")
        ).scalar_one()
        assert user.name == "Anna Müller"


def test_assignment_by_email_shows_the_name_and_tells_the_assignee(
    client, app, coordinator: Caller, smtp
):
    with app.app_context():
        user, token = create_user("bram@quote-service.example", "coordinator", name="Bram Claes")
        bram_id = user.id
    reference = post(client, full_name="Jan Peeters", message="Stroke in 2021, left arm weak.")

    response = assign(client, coordinator, reference, "BRAM@quote-service.example")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["assignee"] == {
        "id": bram_id,
        "email": "bram@quote-service.example",
        "name": "Bram Claes",
    }
    detail = client.get(f"{URL}/{reference}", headers=coordinator.headers).get_json()
    assert detail["assignee"]["name"] == "Bram Claes"
    [item] = client.get(URL, headers=coordinator.headers).get_json()["items"]
    assert item["assignee"]["name"] == "Bram Claes"

    [notice] = notices(app)
    assert notice.recipient == "bram@quote-service.example"
    with app.app_context():
        row = db.session.execute(
            db.select(OutboxMessage).where(
                OutboxMessage.payload["notification_id"].as_integer() == notice.id
            )
        ).scalar_one()
        notifications.deliver(row.id)
    [email] = smtp.to("bram@quote-service.example")
    assert reference in email.message["Subject"]
    text = email.text()
    assert reference in text and coordinator.email in text
    # The reference only: no patient name, address or health text.
    for secret in ("Jan", "Peeters", "people.", "Stroke", "arm", "diabetes"):
        assert secret not in text and secret not in email.html()


def test_claiming_sends_no_notice(client, app, coordinator: Caller):
    reference = post(client)
    assert assign(client, coordinator, reference, "me").status_code == 200
    assert assign(client, coordinator, reference, coordinator.id).status_code == 200
    assert assign(client, coordinator, reference, coordinator.email).status_code == 200
    assert notices(app) == []


def test_an_unknown_or_revoked_user_is_a_422_and_nothing_changes(client, app, coordinator: Caller):
    with app.app_context():
        create_user("gone@quote-service.example", "coordinator")
        revoke_user("gone@quote-service.example")
    reference = post(client)
    for assignee in ("nobody@quote-service.example", "gone@quote-service.example", 2**31 - 1):
        response = assign(client, coordinator, reference, assignee)
        assert response.status_code == 422, assignee
        error = response.get_json()["error"]
        assert error["code"] == "validation_error"
        assert "assignee" in error["fields"]
    for assignee in ("not-an-email", True, 1.5, ["me"]):
        assert assign(client, coordinator, reference, assignee).status_code == 422
    with app.app_context():
        request = db.session.execute(
            db.select(QuoteRequest).where(QuoteRequest.reference == reference)
        ).scalar_one()
        assert request.assignee_id is None
        assert request.version == 1
        types = db.session.execute(
            db.select(Event.type).where(Event.quote_request_id == request.id)
        ).scalars()
        assert "assigned" not in list(types)
    assert notices(app) == []
