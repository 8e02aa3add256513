"""`flask users create|revoke|list`: tokens printed once, stored only as a hash."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskCliRunner

from quote_service.extensions import db
from quote_service.models import User
from quote_service.services.users import hash_token


def create(runner: FlaskCliRunner, email: str, role: str = "coordinator"):
    return runner.invoke(args=["users", "create", "--email", email, "--role", role])


def test_create_prints_the_token_alone_on_the_last_line(runner: FlaskCliRunner, app: Flask):
    result = create(runner, "Ann.Coordinator@Quote-Service.example")
    assert result.exit_code == 0, result.output
    token = result.output.splitlines()[-1]
    assert token.startswith("qs_") and " " not in token and len(token) > 40
    with app.app_context():
        user = db.session.execute(db.select(User)).scalar_one()
        assert user.email == "Ann.Coordinator@quote-service.example"
        assert user.role == "coordinator"
        assert user.token_sha256 == hash_token(token)
        assert token not in (user.token_sha256, user.email)


def test_the_printed_token_opens_the_queue(runner: FlaskCliRunner, client):
    token = create(runner, "ann@quote-service.example").output.splitlines()[-1]
    response = client.get("/api/v1/quote-requests", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200


def test_an_existing_email_is_refused(runner: FlaskCliRunner):
    assert create(runner, "ann@quote-service.example").exit_code == 0
    result = create(runner, "ann@quote-service.example", "admin")
    assert result.exit_code != 0
    assert "exists already" in result.output


def test_an_unknown_role_or_a_bad_email_is_refused(runner: FlaskCliRunner):
    assert create(runner, "ann@quote-service.example", "superuser").exit_code != 0
    result = create(runner, "not-an-email")
    assert result.exit_code != 0
    assert "email" in result.output


def test_revoke_closes_the_door_at_once(runner: FlaskCliRunner, client):
    token = create(runner, "ann@quote-service.example").output.splitlines()[-1]
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/quote-requests", headers=headers).status_code == 200
    result = runner.invoke(args=["users", "revoke", "--email", "ann@quote-service.example"])
    assert result.exit_code == 0, result.output
    response = client.get("/api/v1/quote-requests", headers=headers)
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"


def test_revoking_an_unknown_user_fails(runner: FlaskCliRunner):
    result = runner.invoke(args=["users", "revoke", "--email", "ghost@quote-service.example"])
    assert result.exit_code != 0
    assert "No user" in result.output


def test_list_shows_role_state_and_last_use(runner: FlaskCliRunner, client):
    token = create(runner, "ann@quote-service.example").output.splitlines()[-1]
    create(runner, "bob@quote-service.example", "admin")
    before = runner.invoke(args=["users", "list"]).output
    assert "ann@quote-service.example\tcoordinator\tactive\tlast used never" in before
    client.get("/api/v1/quote-requests", headers={"Authorization": f"Bearer {token}"})
    runner.invoke(args=["users", "revoke", "--email", "bob@quote-service.example"])
    after = runner.invoke(args=["users", "list"]).output
    assert "ann@quote-service.example\tcoordinator\tactive\tlast used 20" in after
    assert "bob@quote-service.example\tadmin\trevoked" in after


def test_the_demo_token_of_make_run_is_replaced_on_each_start(app: Flask, client):
    from quote_service.services.users import issue_demo_token

    with app.app_context():
        first = issue_demo_token()
        second = issue_demo_token()
    assert first != second
    old = client.get("/api/v1/quote-requests", headers={"Authorization": f"Bearer {first}"})
    new = client.get("/api/v1/quote-requests", headers={"Authorization": f"Bearer {second}"})
    assert (old.status_code, new.status_code) == (401, 200)
