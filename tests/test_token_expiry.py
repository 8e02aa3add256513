"""API tokens expire: `users create --expires-days`, API_TOKEN_EXPIRES_DAYS, 401 token_expired."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from quote_service.config import ConfigError, from_environment
from quote_service.extensions import db
from quote_service.models import User, utcnow
from tests.conftest import base_config

QUEUE = "/api/v1/quote-requests"


def create(runner: FlaskCliRunner, email: str, *options: str) -> str:
    result = runner.invoke(
        args=["users", "create", "--email", email, "--role", "coordinator", *options]
    )
    assert result.exit_code == 0, result.output
    return result.output.splitlines()[-1]


def stored(app: Flask, email: str) -> User:
    with app.app_context():
        return db.session.execute(db.select(User).where(User.email == email)).scalar_one()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_new_token_expires_after_the_configured_default(runner: FlaskCliRunner, app: Flask):
    assert app.config["API_TOKEN_EXPIRES_DAYS"] == 90
    before = utcnow()
    create(runner, "ann@quote-service.example")
    expires_at = stored(app, "ann@quote-service.example").expires_at
    assert expires_at is not None
    assert before + timedelta(days=90) <= expires_at <= utcnow() + timedelta(days=90)


def test_expires_days_sets_the_expiry_and_zero_means_never(runner: FlaskCliRunner, app: Flask):
    before = utcnow()
    create(runner, "week@quote-service.example", "--expires-days", "7")
    create(runner, "robot@quote-service.example", "--expires-days", "0")
    week = stored(app, "week@quote-service.example").expires_at
    assert week is not None and week - before - timedelta(days=7) < timedelta(minutes=1)
    assert stored(app, "robot@quote-service.example").expires_at is None


def test_a_negative_number_of_days_is_refused(runner: FlaskCliRunner, app: Flask):
    result = runner.invoke(
        args=["users", "create", "--email", "x@quote-service.example", "--role", "admin"]
        + ["--expires-days", "-1"]
    )
    assert result.exit_code == 2
    assert "--expires-days" in result.output
    with app.app_context():
        assert db.session.execute(db.select(User)).first() is None


def test_the_default_comes_from_the_environment(
    make_app: Callable[[dict], Flask], postgres, app: Flask
):
    assert from_environment({"API_TOKEN_EXPIRES_DAYS": "30"})["API_TOKEN_EXPIRES_DAYS"] == 30
    with pytest.raises(ConfigError, match="API_TOKEN_EXPIRES_DAYS"):
        from_environment({"API_TOKEN_EXPIRES_DAYS": "soon"})
    app = make_app(base_config(postgres.url, API_TOKEN_EXPIRES_DAYS=0))
    create(app.test_cli_runner(), "forever@quote-service.example")
    assert stored(app, "forever@quote-service.example").expires_at is None


def test_an_expired_token_is_a_401_with_its_own_code(
    runner: FlaskCliRunner, app: Flask, client: FlaskClient
):
    token = create(runner, "ann@quote-service.example", "--expires-days", "1")
    assert client.get(QUEUE, headers=bearer(token)).status_code == 200
    with app.app_context():
        user = db.session.execute(db.select(User)).scalar_one()
        user.expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()

    response = client.get(QUEUE, headers=bearer(token))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.get_json()["error"]["code"] == "token_expired"
    # A token that was never valid keeps the plain code.
    unknown = client.get(QUEUE, headers=bearer("qs_not-a-token"))
    assert unknown.get_json()["error"]["code"] == "unauthorized"


def test_list_shows_the_expiry_and_the_expired_state(runner: FlaskCliRunner, app: Flask):
    create(runner, "ann@quote-service.example", "--expires-days", "10")
    create(runner, "robot@quote-service.example", "--expires-days", "0")
    create(runner, "old@quote-service.example", "--expires-days", "1")
    with app.app_context():
        old = db.session.execute(
            db.select(User).where(User.email == "old@quote-service.example")
        ).scalar_one()
        old.expires_at = utcnow() - timedelta(days=1)
        db.session.commit()
    ann_expiry = stored(app, "ann@quote-service.example").expires_at
    assert ann_expiry is not None

    lines = runner.invoke(args=["users", "list"]).output.splitlines()
    ann, robot, expired = (line.split("\t") for line in lines)
    assert ann[1:4] == ["ann@quote-service.example", "coordinator", "active"]
    assert ann[5] == f"expires {ann_expiry.isoformat(timespec='seconds')}"
    assert robot[3:] == ["active", "last used never", "expires never"]
    assert expired[1] == "old@quote-service.example" and expired[3] == "expired"


def test_the_demo_token_gets_the_default_expiry(app: Flask):
    from quote_service.services.users import issue_demo_token

    with app.app_context():
        issue_demo_token()
        user = db.session.execute(db.select(User)).scalar_one()
        assert user.expires_at is not None and user.expires_at > utcnow() + timedelta(days=89)
