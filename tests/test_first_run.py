"""What a newcomer meets on a first `make run`: tokens that last, findable emails, headers."""

from __future__ import annotations

import io
import logging
import stat
from email.message import EmailMessage
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient

from quote_service.logging_setup import make_handler
from quote_service.mail.sender import FileSender
from quote_service.services.demo import TOKENS_FILE, demo_tokens
from quote_service.services.users import authenticate, revoke_user
from tests.payloads import minimal_body

ROOT = Path(__file__).resolve().parent.parent


def test_demo_tokens_stay_valid_across_restarts(app: Flask, tmp_path: Path):
    with app.app_context():
        first = demo_tokens(tmp_path)
        assert [t.role for t in first] == ["coordinator", "admin"]
        assert (tmp_path / TOKENS_FILE).stat().st_mode & 0o077 == 0  # the owner's alone
        again = demo_tokens(tmp_path)  # the next start
        assert again == first
        for demo in again:
            user = authenticate(demo.token)
            assert user is not None and (user.email, user.role) == (demo.email, demo.role)


def test_a_revoked_or_lost_demo_token_is_replaced(app: Flask, tmp_path: Path):
    with app.app_context():
        first = demo_tokens(tmp_path)
        revoke_user(first[0].email)
        second = demo_tokens(tmp_path)
        assert second[0].token != first[0].token and authenticate(second[0].token) is not None
        assert second[1] == first[1]
        (tmp_path / TOKENS_FILE).write_text("not json")
        third = demo_tokens(tmp_path)
        assert all(authenticate(t.token) for t in third)
        assert authenticate(second[0].token) is None  # the forgotten one no longer opens


def test_the_coordinator_demo_token_opens_the_queue(app: Flask, client: FlaskClient, tmp_path):
    with app.app_context():
        coordinator = demo_tokens(tmp_path)[0]
    response = client.get(
        "/api/v1/quote-requests", headers={"Authorization": f"Bearer {coordinator.token}"}
    )
    assert response.status_code == 200


def message(message_id: str) -> bytes:
    email = EmailMessage()
    email["Message-ID"] = message_id
    email["Subject"] = "Test"
    email.set_content("Hello")
    return email.as_bytes()


def test_eml_files_are_named_after_the_reference_and_kind(tmp_path: Path):
    sender = FileSender(tmp_path)
    sender.send("jan@example.org", message("<1@example.org>"), label="QR-7K4M2P9X-acknowledgement")
    sender.send("jan@example.org", message("<1@example.org>"), label="QR-7K4M2P9X-acknowledgement")
    sender.send("clinic@example.org", message("<2@example.org>"), label="QR-7K4M2P9X-provider")
    names = sorted(path.name for path in tmp_path.iterdir())
    assert len(names) == 2  # the same message twice is one file
    assert names[0].startswith("QR-7K4M2P9X-acknowledgement-") and names[0].endswith(".eml")
    assert names[1].startswith("QR-7K4M2P9X-provider-")
    sender.send("x@example.org", message("<3@example.org>"), label="../../etc/passwd")
    assert all(path.parent == tmp_path for path in tmp_path.iterdir())


def test_a_successful_answer_has_no_retry_after(client: FlaskClient):
    created = client.post("/api/v1/quote-requests", json=minimal_body())
    assert created.status_code == 201
    assert "Retry-After" not in created.headers
    assert "Retry-After" not in client.get("/api/v1/catalog").headers
    # Nor the limiter's window: reading it back costs two Redis round trips an answer.
    assert not [name for name in created.headers.keys() if name.startswith("X-RateLimit")]


def test_text_logs_mark_lines_outside_a_request_with_a_dash():
    stream = io.StringIO()
    handler = make_handler("text", stream)
    logger = logging.getLogger("quote_service.test_first_run")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("started")
    finally:
        logger.removeHandler(handler)
    assert " WARNING quote_service.test_first_run [-] started" in stream.getvalue()


def test_make_run_lets_the_example_form_in_and_serves_it():
    makefile = (ROOT / "Makefile").read_text()
    assert "CORS_ORIGINS=$${CORS_ORIGINS-http://127.0.0.1:8000" in makefile
    devserver = (ROOT / "worker" / "devserver.py").read_text()
    assert "EXAMPLE_FORM_PORT = 8000" in devserver
    assert "run_simple(" in devserver  # not app.run(): no second banner format


def test_the_catalogs_are_compiled_at_install_and_in_the_image():
    assert "pybabel compile" in (ROOT / "Makefile").read_text()
    assert "pybabel compile" in (ROOT / "Dockerfile").read_text()
    assert "*.mo" in (ROOT / ".gitignore").read_text()
    assert stat.S_ISREG((ROOT / "babel.cfg").stat().st_mode)
