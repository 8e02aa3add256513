"""Console sign-in: passwords from the CLI, one message for wrong details, throttling,
sessions (cookie flags, idle expiry), sign-out, CSRF."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskCliRunner

from quote_service.extensions import db
from quote_service.models import SignInFailure, User, utcnow
from quote_service.services.demo import demo_tokens
from quote_service.services.passwords import WRONG, issue_demo_password
from tests.conftest import base_config, make_user
from tests.console.support import PASSWORD, csrf_token, page_token, person, sign_in
from tests.support.servers import Server

EMAIL = "ann@quote-service.example"


def test_the_queue_without_a_session_redirects_to_sign_in(client):
    response = client.get("/console/")
    assert response.status_code in (302, 303)
    assert response.headers["Location"].startswith("/console/login")


def test_the_sign_in_form_has_labelled_email_and_password(client):
    html = client.get("/console/login").get_data(as_text=True)
    assert '<label for="email">Email</label>' in html
    assert 'id="email" name="email"' in html
    assert '<label for="password">Password</label>' in html
    assert 'id="password" name="password"' in html


def test_the_cli_sets_a_password_read_from_stdin(runner: FlaskCliRunner, app: Flask):
    make_user(app, EMAIL, "coordinator")
    result = runner.invoke(args=["users", "password", "--email", EMAIL], input=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    with app.app_context():
        stored = db.session.execute(db.select(User)).scalar_one().password_hash
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


def test_the_cli_refuses_short_passwords_and_unknown_users(runner: FlaskCliRunner, app: Flask):
    make_user(app, EMAIL, "coordinator")
    for email, line, says in (
        (EMAIL, "short pass\n", "at least 12"),
        (EMAIL, "\n", "at least 12"),
        ("nobody@quote-service.example", PASSWORD + "\n", "No user"),
    ):
        result = runner.invoke(args=["users", "password", "--email", email], input=line)
        assert result.exit_code != 0
        assert says in result.output
    with app.app_context():
        assert db.session.execute(db.select(User)).scalar_one().password_hash is None


def test_signing_in_opens_the_queue(app: Flask, client):
    person(app, EMAIL)
    response = sign_in(client, EMAIL)
    assert response.status_code == 303
    assert response.headers["Location"] == "/console/"
    assert client.get("/console/").status_code == 200


def test_next_is_followed_only_inside_the_console(app: Flask, client):
    person(app, EMAIL)
    assert sign_in(client, EMAIL, next="https://evil.example/").headers["Location"] == "/console/"
    client.post("/console/logout", data={"csrf_token": page_token(client.get("/console/").text)})
    response = sign_in(client, EMAIL, next="/console/statistics")
    assert response.headers["Location"] == "/console/statistics"


def test_a_wrong_email_and_a_wrong_password_get_the_same_message(app: Flask, client):
    person(app, EMAIL)
    wrong_password = sign_in(client, EMAIL, "not the password at all")
    wrong_email = sign_in(client, "someone.else@quote-service.example")
    for response in (wrong_password, wrong_email):
        assert response.status_code == 401
        assert WRONG in response.text
    assert wrong_password.text.count(WRONG) == 1
    assert client.get("/console/").status_code in (302, 303)


def test_empty_fields_are_a_422_naming_them(client):
    response = client.post(
        "/console/login", data={"email": "", "password": "", "csrf_token": csrf_token(client)}
    )
    assert response.status_code == 422
    assert "Enter your email." in response.text and "Enter your password." in response.text


def test_the_sixth_failure_within_15_minutes_is_refused_even_with_the_right_password(
    app: Flask, client, make_app: Callable[[dict[str, Any]], Flask], postgres: Server
):
    person(app, EMAIL)
    for _ in range(5):
        assert sign_in(client, EMAIL, "a wrong password!").status_code == 401
    refused = sign_in(client, EMAIL)
    assert refused.status_code == 429
    assert 0 < int(refused.headers["Retry-After"]) <= 15 * 60
    assert "Too many failed sign-ins" in refused.text
    # Another process (another app on the same database) refuses it too.
    other = make_app(base_config(postgres.url)).test_client()
    assert sign_in(other, EMAIL).status_code == 429
    assert client.get("/console/").status_code in (302, 303)

    # When the failures are older than the window, the right password works again.
    with app.app_context():
        for failure in db.session.execute(db.select(SignInFailure)).scalars():
            failure.at = utcnow() - timedelta(minutes=16)
        db.session.commit()
    assert sign_in(client, EMAIL).status_code == 303


def test_unknown_emails_are_throttled_too(client):
    for _ in range(5):
        assert sign_in(client, "ghost@quote-service.example", "whatever12345").status_code == 401
    assert sign_in(client, "ghost@quote-service.example", "whatever12345").status_code == 429


def test_a_revoked_user_cannot_sign_in(app: Flask, client, runner: FlaskCliRunner):
    person(app, EMAIL)
    runner.invoke(args=["users", "revoke", "--email", EMAIL])
    assert sign_in(client, EMAIL).status_code == 401


def test_the_session_cookie_is_httponly_and_lax(app: Flask, client):
    person(app, EMAIL)
    cookie = sign_in(client, EMAIL).headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie


def test_the_session_cookie_is_secure_when_asked(
    app: Flask, make_app: Callable[[dict[str, Any]], Flask], postgres: Server
):
    person(app, EMAIL)
    client = make_app(base_config(postgres.url, SESSION_COOKIE_SECURE=True)).test_client()
    cookie = sign_in(client, EMAIL).headers["Set-Cookie"]
    assert "Secure" in cookie


def test_a_session_ends_after_the_idle_time(
    app: Flask, make_app: Callable[[dict[str, Any]], Flask], postgres: Server
):
    person(app, EMAIL)
    client = make_app(base_config(postgres.url, CONSOLE_IDLE_MINUTES=5)).test_client()
    assert sign_in(client, EMAIL).status_code == 303
    assert client.get("/console/").status_code == 200
    with client.session_transaction() as session:
        session["last_active"] = (utcnow() - timedelta(minutes=6)).isoformat()
    response = client.get("/console/")
    assert response.status_code in (302, 303)
    assert response.headers["Location"].startswith("/console/login")
    assert client.get("/console/").status_code in (302, 303)


def test_a_new_password_ends_older_sessions(app: Flask, client, runner: FlaskCliRunner):
    person(app, EMAIL)
    sign_in(client, EMAIL)
    runner.invoke(args=["users", "password", "--email", EMAIL], input="another long passphrase\n")
    assert client.get("/console/").status_code in (302, 303)


def test_sign_out_is_a_post_with_its_token(app: Flask, client):
    person(app, EMAIL)
    sign_in(client, EMAIL)
    assert client.get("/console/logout").status_code == 405
    assert client.post("/console/logout").status_code == 400  # no CSRF token: refused
    assert client.get("/console/").status_code == 200  # still signed in
    token = page_token(client.get("/console/").text)
    assert client.post("/console/logout", data={"csrf_token": token}).status_code == 303
    assert client.get("/console/").status_code in (302, 303)


def test_sign_in_without_a_csrf_token_is_refused(app: Flask, client):
    person(app, EMAIL)
    response = client.post("/console/login", data={"email": EMAIL, "password": PASSWORD})
    assert response.status_code == 400
    assert "nothing was changed" in response.text
    assert client.get("/console/").status_code in (302, 303)


def test_the_demo_admin_of_make_run_gets_a_fresh_password_that_opens_the_console(
    app: Flask, client, tmp_path
):
    with app.app_context():
        admin = next(demo for demo in demo_tokens(tmp_path) if demo.role == "admin")
        first = issue_demo_password(admin.email)
        second = issue_demo_password(admin.email)  # the next start
    assert first != second and len(second) >= 12
    assert sign_in(client, admin.email, first).status_code == 401
    assert sign_in(client, admin.email, second).status_code == 303
    assert client.get("/console/clinics").status_code == 200  # an admin's page
