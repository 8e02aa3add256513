"""Encryption at rest, export, erasure, retention, consent withdrawal and the read audit."""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography.fernet import Fernet
from flask import Flask
from sqlalchemy import text

from quote_service.config import ConfigError, from_environment
from quote_service.crypto import Keyring
from quote_service.extensions import db
from quote_service.models import (
    AccessLog,
    Notification,
    OutboxMessage,
    QuoteRequest,
    utcnow,
)
from quote_service.services import pipeline, privacy
from quote_service.services.keys import encrypted_columns
from tests.conftest import Caller, base_config
from tests.payloads import valid_body
from tests.routing_fixtures import received_row

URL = "/api/v1/quote-requests"


def post(client, **overrides) -> str:
    response = client.post(URL, json=valid_body(**overrides))
    assert response.status_code == 201, response.get_json()
    return response.get_json()["reference"]


def stored(reference: str) -> QuoteRequest:
    return db.session.execute(
        db.select(QuoteRequest).where(QuoteRequest.reference == reference)
    ).scalar_one()


def raw_row(reference: str) -> dict:
    row = (
        db.session.execute(
            text("SELECT * FROM quote_request WHERE reference = :r"), {"r": reference}
        )
        .mappings()
        .one()
    )
    return dict(row)


def test_free_text_email_and_phone_are_encrypted_at_rest(client, app_context):
    reference = post(
        client, message="Aphasia since May.", phone="+32 470 12 34 56", email="enc.test@example.org"
    )
    raw = raw_row(reference)
    for column, plain in (("message", "Aphasia"), ("email", "enc.test"), ("phone", "470")):
        assert raw[column].startswith("gAAAAA"), column  # a Fernet token
        assert plain not in raw[column]
    assert len(raw["email_hash"]) == 64 and len(raw["phone_hash"]) == 64
    request = stored(reference)
    assert request.message == "Aphasia since May."
    assert request.email == "enc.test@example.org"


def test_a_malformed_key_stops_the_start(tmp_path):
    with pytest.raises(ConfigError, match="DATA_ENCRYPTION_KEYS"):
        from_environment({"DATA_ENCRYPTION_KEYS": "not-a-key"}, instance_path=tmp_path)


def test_keys_rotate_reencrypts_everything_and_can_run_again(postgres, app, make_app, tmp_path):
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    old_app = make_app(base_config(postgres.url, DATA_ENCRYPTION_KEYS=[old_key]))
    client = old_app.test_client()
    references = [post(client, email=f"rot{n}@example.org", message=f"m{n}") for n in range(7)]
    with old_app.app_context():
        pipeline.process_received(received_row(stored(references[0])).id)
        db.session.remove()

    rotated = make_app(base_config(postgres.url, DATA_ENCRYPTION_KEYS=[new_key, old_key]))
    # During the rollout both keys read, and lookups by email still find old rows.
    with rotated.app_context():
        assert privacy.requests_of("rot3@example.org")[0].message == "m3"
        db.session.remove()
    runner = rotated.test_cli_runner()
    result = runner.invoke(args=["keys", "rotate", "--batch-size", "3"])
    assert result.exit_code == 0, result.output
    assert "re-encrypted" in result.output
    again = runner.invoke(args=["keys", "rotate"])
    assert "0 rows re-encrypted" in again.output

    # The old key can now be dropped: the new one alone reads every row.
    only_new = make_app(base_config(postgres.url, DATA_ENCRYPTION_KEYS=[new_key]))
    with only_new.app_context():
        newest = Keyring([new_key])
        # Every encrypted column the models have, found from the models alone.
        for spec in encrypted_columns():
            for column in spec.columns:
                tokens = (
                    db.session.execute(
                        text(f"SELECT {column} FROM {spec.table} WHERE {column} IS NOT NULL")
                    )
                    .scalars()
                    .all()
                )
                assert all(newest.is_current(token) for token in tokens), (spec.table, column)
        assert privacy.requests_of("rot3@example.org")[0].message == "m3"
        db.session.remove()


def test_export_by_email_returns_everything_and_is_audited(
    client, app_context, admin: Caller, coordinator: Caller
):
    reference = post(client, email="export.me@example.org", message="History: TIA 2024.")
    pipeline.process_received(received_row(stored(reference)).id)
    db.session.remove()
    body = {"email": "Export.Me@example.org"}
    assert (
        client.post("/api/v1/privacy/export", json=body, headers=coordinator.headers).status_code
        == 403
    )
    response = client.post("/api/v1/privacy/export", json=body, headers=admin.headers)
    assert response.status_code == 200
    [exported] = response.get_json()["quote_requests"]
    assert exported["reference"] == reference
    assert exported["message"] == "History: TIA 2024."
    assert {n["kind"] for n in exported["notifications"]} == {"acknowledgement", "provider"}
    assert exported["timeline"][0]["type"] == "received"
    entry = db.session.execute(
        db.select(AccessLog).where(AccessLog.action == "export")
    ).scalar_one()
    assert entry.user_id == admin.id
    assert entry.subject_hash and "export" not in entry.subject_hash


def test_erasure_keeps_a_skeleton_without_personal_data(client, app_context, admin: Caller):
    reference = post(
        client, email="erase.me@example.org", full_name="Erin Erasable", message="Private history."
    )
    pipeline.process_received(received_row(stored(reference)).id)
    db.session.remove()
    response = client.post(
        "/api/v1/privacy/erasure", json={"email": "erase.me@example.org"}, headers=admin.headers
    )
    assert response.get_json() == {"erased": 1}
    request = stored(reference)
    assert request.full_name == "[erased]"
    assert request.email == "" and request.email_hash is None
    assert request.message is None and request.phone is None and request.patient_age is None
    assert request.erased_at is not None
    assert request.status == "routed"  # statistics still count it
    assert request.events[-1].type == "erased"
    assert all(e.note is None for e in request.events[:-1])
    notifications = db.session.execute(db.select(Notification)).scalars().all()
    assert all(n.mime is None for n in notifications)
    assert all(n.status == "suppressed" for n in notifications)
    pending = db.select(OutboxMessage).where(OutboxMessage.completed_at.is_(None))
    assert db.session.execute(pending).first() is None
    assert privacy.requests_of("erase.me@example.org") == []


def test_retention_anonymises_old_closed_requests_and_drops_old_bodies(
    app: Flask, client, app_context
):
    old_closed = post(client, email="old@example.org")
    open_old = post(client, email="open@example.org")
    for reference in (old_closed, open_old):
        pipeline.process_received(received_row(stored(reference)).id)
    long_ago = utcnow() - timedelta(days=app.config["RETENTION_DAYS"] + 1)
    closed = stored(old_closed)
    closed.status = "closed"
    closed.updated_at = long_ago
    stored(open_old).updated_at = long_ago
    for notification in db.session.execute(db.select(Notification)).scalars():
        notification.status = "sent"
        notification.created_at = utcnow() - timedelta(days=31)
    db.session.commit()

    open_bodies = db.session.execute(
        db.select(db.func.count(Notification.id)).where(
            Notification.quote_request_id == stored(open_old).id
        )
    ).scalar()

    result = privacy.apply_retention()

    assert result["anonymised"] == 1
    # The anonymised request's bodies went with it; the open one's are dropped by age.
    assert open_bodies >= 2
    assert result["bodies_dropped"] == open_bodies
    assert (
        db.session.execute(db.select(Notification).where(Notification.mime.is_not(None))).first()
        is None
    )
    assert stored(old_closed).full_name == "[erased]"
    assert stored(open_old).full_name != "[erased]"
    assert privacy.apply_retention() == {"anonymised": 0, "bodies_dropped": 0}


def test_withdrawing_consent_stops_processing(client, app_context, coordinator: Caller):
    reference = post(client)
    pipeline.process_received(received_row(stored(reference)).id)
    db.session.remove()
    etag = client.get(f"{URL}/{reference}", headers=coordinator.headers).headers["ETag"]
    response = client.post(
        f"{URL}/{reference}/transitions",
        json={"to": "withdrawn"},
        headers={**coordinator.headers, "If-Match": etag},
    )
    assert response.status_code == 200
    request = stored(reference)
    assert request.consent_withdrawn_at is not None
    statuses = db.session.execute(db.select(Notification.status)).scalars().all()
    assert statuses and set(statuses) == {"suppressed"}
    pending = db.select(OutboxMessage).where(OutboxMessage.completed_at.is_(None))
    assert db.session.execute(pending).first() is None


def test_reads_are_audited_and_listed_for_admins(
    client, app_context, admin: Caller, coordinator: Caller
):
    reference = post(client)
    client.get(f"{URL}/{reference}", headers=coordinator.headers)
    assert client.get("/api/v1/access-log", headers=coordinator.headers).status_code == 403
    response = client.get("/api/v1/access-log", headers=admin.headers)
    assert response.status_code == 200
    [entry] = response.get_json()["items"]
    assert entry["action"] == "read_detail"
    assert entry["user_id"] == coordinator.id
    assert entry["actor"] == f"user:{coordinator.email}"
    assert entry["quote_request_id"] == stored(reference).id


def test_retention_runs_from_beat(monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'beat.sqlite3'}")
    import importlib

    import worker
    from worker.schedule import BEAT_SCHEDULE

    worker = importlib.reload(worker)
    assert BEAT_SCHEDULE["apply-retention"]["task"] == "quote.apply_retention"
    assert "quote.apply_retention" in worker.celery.tasks
