"""A canary through the whole pipeline: it never shows in logs, Redis or plaintext columns."""

from __future__ import annotations

import logging
import uuid

import pytest
import redis
from celery.contrib.testing.worker import start_worker
from sqlalchemy import text

from quote_service.extensions import db
from quote_service.models import Base
from quote_service.services.keys import encrypted_columns
from tests.conftest import Caller, base_config, smtp_config
from tests.payloads import valid_body
from tests.support.polling import wait_until
from tests.support.servers import Server
from worker.relay import OutboxRelayStep

URL = "/api/v1/quote-requests"


def redis_dump(url: str) -> str:
    """Every key and value in the broker's database, as text."""
    parts = []
    with redis.Redis.from_url(url) as client:
        for key in client.scan_iter():
            kind = client.type(key).decode()
            if kind == "string":
                value = client.get(key)
            elif kind == "list":
                value = client.lrange(key, 0, -1)
            elif kind == "hash":
                value = client.hgetall(key)
            elif kind == "set":
                value = client.smembers(key)
            elif kind == "zset":
                value = client.zrange(key, 0, -1)
            else:
                value = b""
            parts.append(f"{key!r} {value!r}")
    return "\n".join(parts)


def database_dump() -> str:
    """Every row of every table as PostgreSQL prints it (what a dump would hold)."""
    rows = []
    for table in Base.metadata.sorted_tables:
        rows += db.session.execute(text(f'SELECT t::text FROM "{table.name}" t')).scalars().all()
    return "\n".join(rows)


def decrypted_values() -> str:
    """Every encrypted value, decrypted: what erasure must have removed."""
    from quote_service.crypto import keyring

    values = []
    for spec in encrypted_columns():
        for column in spec.columns:
            tokens = db.session.execute(
                text(f"SELECT {column} FROM {spec.table} WHERE {column} IS NOT NULL")
            ).scalars()
            values += [keyring().decrypt(token) for token in tokens]
    return "\n".join(values)


@pytest.mark.timeout(90)
def test_canaries_leak_nowhere_and_erasure_removes_them(
    postgres: Server, redis_server: Server, app, smtp, make_app, admin: Caller, caplog
):
    caplog.set_level(logging.DEBUG)
    message_canary = f"MSGCANARY{uuid.uuid4().hex}"
    name_canary = f"Namecanary{uuid.uuid4().hex[:12]}"
    email = f"canary.{uuid.uuid4().hex[:8]}@example.org"
    with redis.Redis.from_url(redis_server.url) as client:
        client.flushdb()
    worker_app = make_app(
        base_config(postgres.url, REDIS_URL=redis_server.url, **smtp_config(smtp))
    )
    worker_app.extensions["celery"].steps["worker"].add(OutboxRelayStep)
    client = worker_app.test_client()

    with start_worker(
        worker_app.extensions["celery"],
        pool="solo",
        perform_ping_check=False,
        shutdown_timeout=30,
        loglevel="DEBUG",
    ):
        response = client.post(
            URL,
            json=valid_body(
                full_name=f"Jan {name_canary}",
                email=email,
                message=f"Left arm weak. {message_canary}",
            ),
        )
        assert response.status_code == 201
        assert wait_until(lambda: len(smtp.received) == 2)
        broker_contents = redis_dump(redis_server.url)

    # It did travel: the clinic got the message (by SMTP, as it must).
    assert any(message_canary in r.text() for r in smtp.received)
    # Everything the service and its libraries logged; the test's own SMTP server
    # (aiosmtpd's "mail.log") is the recipient, not the service, and is left out.
    service_logs = "\n".join(
        record.getMessage() for record in caplog.records if not record.name.startswith("mail.log")
    )
    assert service_logs  # the capture did see the pipeline run
    assert message_canary not in service_logs and name_canary not in service_logs
    assert email not in service_logs
    assert message_canary not in broker_contents and name_canary not in broker_contents
    with worker_app.app_context():
        dump = database_dump()
        assert message_canary not in dump
        assert email not in dump
        assert name_canary in dump  # names are personal data, not free text: kept in clear
        db.session.remove()

    erased = client.post("/api/v1/privacy/erasure", json={"email": email}, headers=admin.headers)
    assert erased.get_json() == {"erased": 1}
    with worker_app.app_context():
        for haystack in (database_dump(), decrypted_values()):
            assert message_canary not in haystack
            assert name_canary not in haystack
            assert email not in haystack
        db.session.remove()
