"""Backups that restore: deploy/backup/backup.sh and restore.sh against real PostgreSQL.

The scripts the compose stack runs are run here as they are, with the machine's
pg_dump and pg_restore, on this run's database: a populated database is
dumped, restored into a new one, and its requests read back with the same
keys, encrypted columns included.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet, InvalidToken
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from quote_service.extensions import db
from quote_service.models import Notification, QuoteRequest
from quote_service.services import pipeline
from tests.conftest import base_config
from tests.payloads import valid_body
from tests.routing_fixtures import received_row
from tests.support.servers import Server
from tests.test_workflow_api import stored

ROOT = Path(__file__).resolve().parent.parent
BACKUP = ROOT / "deploy" / "backup" / "backup.sh"
RESTORE = ROOT / "deploy" / "backup" / "restore.sh"
TOOLS = ("pg_dump", "pg_restore", "createdb", "dropdb")

pytestmark = pytest.mark.skipif(
    any(shutil.which(tool) is None for tool in TOOLS),
    reason="PostgreSQL's client programs are missing: apt-get install postgresql-client",
)


def libpq_environment(url: str, **extra: str) -> dict[str, str]:
    """The database of a SQLAlchemy URL as libpq's variables, as the compose stack sets them."""
    parsed = make_url(url)
    host = parsed.host or str(parsed.query.get("host", ""))
    environment = {
        "PATH": os.environ["PATH"],
        "PGHOST": host,
        "PGPORT": str(parsed.port or 5432),
        "PGUSER": parsed.username or "postgres",
        "PGDATABASE": parsed.database or "",
        **extra,
    }
    if parsed.password:
        environment["PGPASSWORD"] = parsed.password
    return environment


def run(script: Path, *args: str, environment: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["sh", str(script), *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def restored_url(postgres: Server) -> Iterator[str]:
    """A database of our own next to the test database, kept between runs like that one.

    Dropping a database makes PostgreSQL checkpoint, which takes minutes on a
    busy server: it is emptied afterwards instead, and restore.sh empties it
    in place at the next run.
    """
    url = make_url(postgres.url)
    restored = url.set(database=f"{url.database}_restored").render_as_string(hide_password=False)
    yield restored
    engine = create_engine(restored)
    try:
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
    except OperationalError:
        pass  # never created: a test before the restore failed
    finally:
        engine.dispose()


def populate(app: Flask, client: FlaskClient) -> list[str]:
    """Requests with every encrypted field filled, one routed (so it has emails)."""
    references = []
    for number in range(3):
        body = valid_body(
            full_name=f"Restore Patient {number}",
            email=f"restore.canary.{number}@example.org",
            phone=f"+32 470 12 34 5{number}",
            message=f"Restore canary message {number}: weakness on the left side since 2021.",
        )
        response = client.post("/api/v1/quote-requests", json=body)
        assert response.status_code == 201, response.get_json()
        references.append(response.get_json()["reference"])
    with app.app_context():
        pipeline.process_received(received_row(stored(references[0])).id)
    return references


def snapshot(app: Flask, references: list[str]) -> dict[str, Any]:
    """Every decrypted field of the requests and their emails, as the app reads them."""
    with app.app_context():
        result = {}
        for reference in references:
            request = stored(reference)
            emails = db.session.execute(
                db.select(Notification)
                .where(Notification.quote_request_id == request.id)
                .order_by(Notification.id)
            ).scalars()
            result[reference] = {
                "full_name": request.full_name,
                "email": request.email,
                "phone": request.phone,
                "message": request.message,
                "status": request.status,
                "emails": [(n.kind, n.status, n.recipient, n.mime) for n in emails],
            }
        db.session.remove()
        return result


def test_a_dump_restores_into_a_new_database_and_reads_back_with_the_same_keys(
    app: Flask,
    client: FlaskClient,
    postgres: Server,
    restored_url: str,
    make_app: Callable[[dict], Flask],
    tmp_path: Path,
):
    references = populate(app, client)
    before = snapshot(app, references)
    assert before[references[0]]["emails"], "the routed request has its emails"
    assert all(fields["message"].startswith("Restore canary") for fields in before.values())

    backups = tmp_path / "backups"
    result = run(
        BACKUP, "once", environment=libpq_environment(postgres.url, BACKUP_DIR=str(backups))
    )
    assert result.returncode == 0, result.stderr
    [dump] = backups.iterdir()
    assert dump.name.startswith(make_url(postgres.url).database + "-")
    assert dump.suffix == ".dump"
    assert stat.S_IMODE(dump.stat().st_mode) == 0o600  # personal data: the owner's only
    assert f"backup: wrote {dump}" in result.stdout

    # The encrypted columns are in the dump as they are stored: unreadable without the keys.
    as_sql = subprocess.run(
        ["pg_restore", "--file=-", str(dump)], capture_output=True, text=True, check=True
    ).stdout
    assert "INSERT" in as_sql or "COPY public.quote_request" in as_sql
    for fields in before.values():
        for secret in (fields["email"], fields["phone"], fields["message"]):
            assert secret not in as_sql

    target = make_url(restored_url).database
    restored = run(RESTORE, str(dump), target, environment=libpq_environment(postgres.url))
    assert restored.returncode == 0, restored.stderr
    assert f"restore: {target} now holds {dump}" in restored.stdout

    # The same keys: this run's (the instance folder's development key when none is set).
    same_keys = make_app(
        base_config(restored_url, DATA_ENCRYPTION_KEYS=app.config["DATA_ENCRYPTION_KEYS"])
    )
    assert snapshot(same_keys, references) == before
    # The restored database is a whole one: the queue's search by email finds the patient.
    with same_keys.app_context():
        from quote_service.crypto import keyring

        found = db.session.execute(
            db.select(QuoteRequest.reference).where(
                QuoteRequest.email_hash.in_(keyring().lookup_hashes(before[references[1]]["email"]))
            )
        ).scalars()
        assert list(found) == [references[1]]

    # Other keys read nothing: the dump is only as good as the keys kept apart from it.
    other_keys = make_app(
        base_config(restored_url, DATA_ENCRYPTION_KEYS=[Fernet.generate_key().decode()])
    )
    with other_keys.app_context(), pytest.raises(InvalidToken):
        stored(references[0])  # loading the row decrypts its columns


def test_old_dumps_are_removed_after_the_kept_days(postgres: Server, tmp_path: Path):
    database = make_url(postgres.url).database
    backups = tmp_path / "backups"
    backups.mkdir()
    old = backups / f"{database}-20200101T000000Z.dump"
    recent = backups / f"{database}-20200102T000000Z.dump"
    stale_partial = backups / f"{database}-20200103T000000Z.dump.partial"
    unrelated = backups / "notes.txt"
    for path in (old, recent, stale_partial, unrelated):
        path.write_text("x")
    now = time.time()
    os.utime(old, (now - 8 * 86400, now - 8 * 86400))
    os.utime(recent, (now - 6 * 86400, now - 6 * 86400))
    os.utime(stale_partial, (now - 2 * 86400, now - 2 * 86400))
    os.utime(unrelated, (now - 30 * 86400, now - 30 * 86400))

    environment = libpq_environment(postgres.url, BACKUP_DIR=str(backups), BACKUP_KEEP_DAYS="7")
    result = run(BACKUP, "once", environment=environment)
    assert result.returncode == 0, result.stderr
    left = sorted(path.name for path in backups.iterdir())
    assert old.name not in left and stale_partial.name not in left
    assert recent.name in left and unrelated.name in left
    assert len([name for name in left if name.endswith(".dump")]) == 2  # recent and the new one
    assert f"backup: removed old {old}" in result.stdout


def test_a_failed_dump_leaves_no_dump_file(tmp_path: Path, postgres: Server):
    backups = tmp_path / "backups"
    environment = libpq_environment(
        postgres.url, BACKUP_DIR=str(backups), PGDATABASE="no_such_database_here"
    )
    result = run(BACKUP, "once", environment=environment)
    assert result.returncode != 0
    assert not list(backups.glob("*.dump"))


def test_a_damaged_dump_is_refused_before_anything_is_dropped(
    postgres: Server, restored_url: str, tmp_path: Path
):
    target = make_url(restored_url).database
    environment = libpq_environment(postgres.url)
    subprocess.run(["createdb", target], env=environment, capture_output=True, check=False)
    engine_url = make_url(restored_url)
    engine = create_engine(engine_url)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE IF NOT EXISTS still_here (id int)"))
    engine.dispose()

    damaged = tmp_path / "damaged.dump"
    damaged.write_bytes(b"PGDMP this is not an archive")
    result = run(RESTORE, str(damaged), target, environment=environment)
    assert result.returncode != 0

    engine = create_engine(engine_url)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM still_here")).scalar_one() == 0
    engine.dispose()


def test_the_scripts_refuse_to_run_without_their_arguments(tmp_path: Path):
    environment = {"PATH": os.environ["PATH"], "PGDATABASE": "x"}
    assert run(BACKUP, environment=environment).returncode == 2
    assert run(RESTORE, environment=environment).returncode == 2
    missing = run(RESTORE, str(tmp_path / "none.dump"), environment=environment)
    assert missing.returncode == 2 and "no such dump" in missing.stderr
