"""Idempotency-Key on POST /quote-requests: replay, refusals, concurrency, expiry."""

from __future__ import annotations

import importlib
import json
import threading
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text

from quote_service.extensions import db
from quote_service.models import Event, IdempotencyKey, OutboxMessage, QuoteRequest, utcnow
from quote_service.services import idempotency
from quote_service.services.intake import submission_lock_key
from tests.payloads import minimal_body, valid_body
from tests.support.polling import wait_until
from tests.support.servers import Server
from tests.support.statements import statements_counted, writes
from worker.schedule import BEAT_SCHEDULE

URL = "/api/v1/quote-requests"
JSON = "application/json"


def raw(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()


def post(client: FlaskClient, body: bytes, key: str | None, content_type: str = JSON):
    headers = {} if key is None else {"Idempotency-Key": key}
    return client.post(URL, data=body, content_type=content_type, headers=headers)


def count(model: type) -> int:
    db.session.expire_all()
    return db.session.execute(db.select(db.func.count()).select_from(model)).scalar_one()


def key_row(key: str) -> IdempotencyKey | None:
    db.session.expire_all()
    return db.session.execute(
        db.select(IdempotencyKey).where(IdempotencyKey.key == key)
    ).scalar_one_or_none()


def claim_held() -> bool:
    """Whether some transaction holds an Idempotency-Key claim (its advisory lock)."""
    return (
        db.session.execute(
            text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                " AND classid = :class AND objsubid = 2"
            ),
            {"class": idempotency.LOCK_CLASS},
        ).scalar_one()
        == 1
    )


def waiting_for(key: int) -> bool:
    """Whether a transaction is waiting for the submission lock `key`."""
    unsigned = key % 2**64
    return (
        db.session.execute(
            text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                " AND objsubid = 1 AND classid = :high AND objid = :low"
            ),
            {"high": unsigned >> 32, "low": unsigned & 0xFFFFFFFF},
        ).scalar_one()
        == 1
    )


def claimed_row(key: str, body: bytes, age: timedelta) -> None:
    """A key claimed `age` ago by a request of an earlier release (which wrote
    its claims as rows), still running or dead; or, past its lifetime, any key."""
    created = utcnow() - age
    db.session.add(
        IdempotencyKey(
            key=key,
            fingerprint=idempotency.fingerprint(JSON, body),
            state=idempotency.IN_FLIGHT,
            created_at=created,
            expires_at=created + idempotency.KEY_LIFETIME,
        )
    )
    db.session.commit()


def test_a_replay_gets_the_first_response_and_writes_nothing(client: FlaskClient, app_context):
    body = raw(valid_body())
    first = post(client, body, "order-1")
    again = post(client, body, "order-1")

    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json()
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert (count(QuoteRequest), count(OutboxMessage), count(Event)) == (1, 1, 1)


def test_the_answer_is_stored_with_the_key_for_24_hours(client: FlaskClient, app_context):
    response = post(client, raw(minimal_body()), "order-2")
    row = key_row("order-2")
    assert row.state == idempotency.COMPLETED
    assert row.response_status == 201
    assert row.response_body == response.get_json()
    assert row.response_headers == {"Location": response.headers["Location"]}
    assert row.fingerprint == idempotency.fingerprint(JSON, raw(minimal_body()))
    assert row.expires_at - row.created_at == timedelta(hours=24)


def test_the_request_its_event_outbox_row_and_stored_answer_take_two_writes(
    client: FlaskClient, app_context
):
    with statements_counted(db.engine) as statements:
        response = post(client, raw(valid_body()), "order-writes")
    assert response.status_code == 201
    done = writes(statements)
    if db.engine.dialect.name == "postgresql":
        # The request's INSERT (its id is needed), then the rest in one statement.
        assert len(done) == 2
        assert all(table in done[1] for table in ("event", "outbox_message", "idempotency_key"))
    else:  # SQLite has no writes in a CTE
        assert len(done) == 4
    request = db.session.execute(db.select(QuoteRequest)).scalar_one()
    assert request.reference == response.get_json()["reference"]
    [received] = db.session.execute(db.select(Event)).scalars().all()
    assert (received.quote_request_id, received.type, received.actor) == (
        request.id,
        "received",
        "patient",
    )
    row = db.session.execute(db.select(OutboxMessage)).scalar_one()
    assert row.topic == "quote_request.received"
    assert row.payload["quote_request_id"] == request.id
    assert (row.publish_count, row.failures, row.holder, row.completed_at) == (0, 0, None, None)
    assert key_row("order-writes").response_body == response.get_json()


def test_a_key_answered_elsewhere_since_the_claim_rolls_the_whole_request_back(
    app: Flask, app_context
):
    """The race the claim's lock cannot close: a first request with the key committed
    just as this one read it. The answer's write finds the row taken, nothing is kept."""
    from functools import partial

    from quote_service.api.intake import remember_answer
    from quote_service.schemas.intake import QuoteRequestInSchema
    from quote_service.services import intake

    fingerprint = idempotency.fingerprint(JSON, b"{}")
    claim = idempotency.claim("order-race", fingerprint)
    assert isinstance(claim, idempotency.Claim)
    with db.engine.begin() as other:  # the first request, committing its answer now
        other.execute(
            db.insert(IdempotencyKey).values(
                key="order-race",
                fingerprint=fingerprint,
                state=idempotency.COMPLETED,
                response_status=201,
                created_at=utcnow(),
                expires_at=utcnow() + idempotency.KEY_LIFETIME,
            )
        )
    data = QuoteRequestInSchema().load(valid_body())
    with app.test_request_context(), pytest.raises(idempotency.IdempotencyKeyInFlight):
        intake.receive_quote_request(data, answer=partial(remember_answer, claim))
    db.session.rollback()  # as the Idempotency-Key decorator's release does
    assert (count(QuoteRequest), count(OutboxMessage), count(Event)) == (0, 0, 0)
    assert key_row("order-race").response_body is None  # the first request's row, untouched


def test_the_same_key_with_another_body_is_422(client: FlaskClient, app_context):
    first = post(client, raw(minimal_body()), "order-3")
    other = post(client, raw(minimal_body(full_name="Someone Else")), "order-3")

    assert first.status_code == 201
    assert other.status_code == 422
    assert other.get_json()["error"]["code"] == "idempotency_key_reused"
    assert count(QuoteRequest) == 1


def test_the_same_bytes_with_another_content_type_is_another_request(
    client: FlaskClient, app_context
):
    body = raw(minimal_body())
    assert post(client, body, "order-4").status_code == 201
    response = post(client, body, "order-4", content_type="application/json; charset=utf-8")
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "idempotency_key_reused"


def test_a_key_in_flight_is_409_and_nothing_is_written(client: FlaskClient, app_context):
    body = raw(minimal_body())
    claimed_row("order-5", body, age=timedelta(seconds=1))

    response = post(client, body, "order-5")

    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "idempotency_key_in_flight"
    assert count(QuoteRequest) == 0
    assert key_row("order-5").state == idempotency.IN_FLIGHT  # still the first request's


def test_a_claim_abandoned_for_over_60_seconds_is_taken_over(client: FlaskClient, app_context):
    body = raw(minimal_body())
    claimed_row("order-6", body, age=timedelta(seconds=61))

    response = post(client, body, "order-6")

    assert response.status_code == 201
    assert count(QuoteRequest) == 1
    row = key_row("order-6")
    assert row.state == idempotency.COMPLETED
    assert row.response_body["reference"] == response.get_json()["reference"]


def test_two_concurrent_posts_with_one_key_get_one_201_and_one_409(app: Flask, app_context):
    body = minimal_body(email="concurrent@example.org")
    lock = submission_lock_key(body["email"], body["condition"], body["destination"])
    results: list[Any] = []

    def first_post() -> None:
        results.append(post(app.test_client(), raw(body), "order-7"))

    # Hold the lock the intake takes after claiming the key: the first POST
    # stays in flight, holding its claim, until the lock is let go.
    with db.engine.connect() as holder:
        holder.execute(text("SELECT pg_advisory_lock(:key)"), {"key": lock})
        thread = threading.Thread(target=first_post)
        try:
            thread.start()
            assert wait_until(lambda: claim_held() and waiting_for(lock), timeout=10)
            assert key_row("order-7") is None  # nothing is written before the work is done
            second = post(app.test_client(), raw(body), "order-7")
        finally:
            holder.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": lock})
            holder.commit()
            thread.join(timeout=20)
    assert not thread.is_alive()

    [first] = results
    assert (first.status_code, second.status_code) == (201, 409)
    assert second.get_json()["error"]["code"] == "idempotency_key_in_flight"
    assert count(QuoteRequest) == 1
    assert key_row("order-7").state == idempotency.COMPLETED


def test_a_validation_error_frees_the_key_for_a_fixed_retry(client: FlaskClient, app_context):
    broken = post(client, raw(minimal_body(email="not-an-email")), "order-8")
    assert broken.status_code == 422
    assert broken.get_json()["error"]["code"] == "validation_error"
    assert key_row("order-8") is None

    fixed = post(client, raw(minimal_body()), "order-8")
    assert fixed.status_code == 201
    assert key_row("order-8").state == idempotency.COMPLETED


def test_a_catalog_refusal_after_the_claim_frees_the_key_too(client: FlaskClient, app_context):
    # FR is a valid country but not a destination: refused by the service, past the claim.
    refused = post(client, raw(minimal_body(destination="FR")), "order-9")
    assert refused.status_code == 422
    assert "destination" in refused.get_json()["error"]["fields"]
    assert key_row("order-9") is None
    assert post(client, raw(minimal_body()), "order-9").status_code == 201


@pytest.mark.parametrize("key", ["", "x" * 256, "clé", "tab\there"])
def test_a_malformed_key_is_400(client: FlaskClient, app_context, key: str):
    response = post(client, raw(minimal_body()), key)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_idempotency_key"
    assert (count(QuoteRequest), count(IdempotencyKey)) == (0, 0)


def test_a_key_of_255_printable_characters_is_accepted(client: FlaskClient, app_context):
    key = ("~ !" * 85)[:255]
    assert post(client, raw(minimal_body()), key).status_code == 201
    assert key_row(key).state == idempotency.COMPLETED


def test_an_expired_key_is_a_new_key(client: FlaskClient, app_context):
    old = raw(minimal_body(email="last.week@example.org"))
    claimed_row("order-10", old, age=timedelta(days=2))  # past its lifetime, not yet purged

    response = post(client, raw(minimal_body()), "order-10")  # another body: no 422 now
    assert response.status_code == 201
    assert key_row("order-10").fingerprint == idempotency.fingerprint(JSON, raw(minimal_body()))


def test_expired_keys_are_purged_by_the_beat_task(
    app: Flask, app_context, postgres: Server, monkeypatch, tmp_path
):
    body = raw(minimal_body())
    claimed_row("expired", body, age=idempotency.KEY_LIFETIME + timedelta(seconds=1))
    claimed_row("fresh", body, age=idempotency.KEY_LIFETIME - timedelta(minutes=1))

    # The task as the worker runs it: importing `worker` builds its app from the environment.
    monkeypatch.setenv("DATABASE_URL", postgres.url)
    monkeypatch.setenv("MAIL_DIR", str(tmp_path / "mail"))
    import worker

    worker = importlib.reload(worker)
    try:
        task = worker.celery.tasks[BEAT_SCHEDULE["purge-idempotency-keys"]["task"]]
        assert task.apply().get() == 1
    finally:
        with worker.flask_app.app_context():
            db.engine.dispose()

    assert BEAT_SCHEDULE["purge-idempotency-keys"] == {
        "task": "quote.purge_idempotency_keys",
        "schedule": 3600.0,
    }
    assert key_row("expired") is None
    assert key_row("fresh") is not None


def test_the_openapi_documents_the_header_and_its_answers(client: FlaskClient):
    operation = client.get("/openapi.json").get_json()["paths"][URL]["post"]
    [header] = [p for p in operation["parameters"] if p["name"] == "Idempotency-Key"]
    assert header["in"] == "header"
    assert header["schema"]["maxLength"] == 255
    assert {"409", "422"} <= set(operation["responses"])
    assert "Idempotent-Replayed" in operation["responses"]["201"]["headers"]
