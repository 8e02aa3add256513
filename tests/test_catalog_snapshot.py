"""The intake's catalog snapshot: read once per process, never older than the last write."""

from __future__ import annotations

import json
from collections.abc import Iterator

import psycopg
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text

from quote_service.extensions import db
from quote_service.services import catalog_snapshot
from tests.payloads import valid_body
from tests.support.statements import statements_counted

URL = "/api/v1/quote-requests"
WATCHED = {
    # A write to each table the snapshot holds, and its undoing.
    "destination": (
        "UPDATE destination SET active = false WHERE code = 'BE'",
        "UPDATE destination SET active = true WHERE code = 'BE'",
    ),
    "condition": (
        "UPDATE condition SET position = position + 1 WHERE slug = 'stroke'",
        "UPDATE condition SET position = position - 1 WHERE slug = 'stroke'",
    ),
    "treatment": (
        "UPDATE treatment SET position = position + 1 WHERE slug = 'msc'",
        "UPDATE treatment SET position = position - 1 WHERE slug = 'msc'",
    ),
    "destination_condition": (
        "DELETE FROM destination_condition WHERE destination_code = 'BE'"
        " AND condition_slug = 'stroke'",
        "INSERT INTO destination_condition VALUES ('BE', 'stroke')",
    ),
    "language": (
        "UPDATE language SET position = position + 1 WHERE code = 'nl'",
        "UPDATE language SET position = position - 1 WHERE code = 'nl'",
    ),
    "consent_text": (
        "UPDATE consent_text SET text = text || ' ' WHERE language = 'en'",
        "UPDATE consent_text SET text = rtrim(text) WHERE language = 'en'",
    ),
    "disclaimer": (
        "UPDATE disclaimer SET position = position + 1 WHERE key = 'not-medical-advice'",
        "UPDATE disclaimer SET position = position - 1 WHERE key = 'not-medical-advice'",
    ),
}


@pytest.fixture
def other_process(app: Flask) -> Iterator[psycopg.Connection]:
    """A connection of its own, as `flask seed` or psql in another process would have."""
    url = app.config["SQLALCHEMY_DATABASE_URI"].replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url, autocommit=True) as connection:
        yield connection


def version(app: Flask) -> int:
    with app.app_context():
        return catalog_snapshot.current().version


@pytest.mark.parametrize("table", sorted(WATCHED))
def test_every_write_to_a_watched_table_moves_the_version(
    app: Flask, other_process: psycopg.Connection, table: str
):
    change, undo = WATCHED[table]
    before = version(app)
    other_process.execute(change)
    changed = version(app)
    other_process.execute(undo)
    assert before < changed < version(app)


def test_a_destination_withdrawn_elsewhere_is_refused_at_once(
    app: Flask, client: FlaskClient, other_process: psycopg.Connection
):
    assert client.post(URL, json=valid_body(destination="BE")).status_code == 201
    other_process.execute(WATCHED["destination"][0])
    try:
        response = client.post(URL, json=valid_body(destination="BE"))
        assert response.status_code == 422, response.get_data(as_text=True)
        assert "destination" in response.get_json()["error"]["fields"]
    finally:
        other_process.execute(WATCHED["destination"][1])
    assert client.post(URL, json=valid_body(destination="BE")).status_code == 201


def test_a_new_consent_version_is_recorded_at_once(
    app: Flask, client: FlaskClient, other_process: psycopg.Connection
):
    with app.app_context():
        newest = catalog_snapshot.current().consent("en")
        assert newest is not None
    other_process.execute(
        "INSERT INTO consent_text (version, language, text, created_at)"
        " VALUES (%s, 'en', 'A newer consent.', now())",
        (newest.version + 1,),
    )
    try:
        response = client.post(URL, json=valid_body(preferred_language="en"))
        assert response.status_code == 201
        with app.app_context():
            recorded = db.session.execute(
                text("SELECT consent_version FROM quote_request WHERE reference = :r"),
                {"r": response.get_json()["reference"]},
            ).scalar_one()
        assert recorded == newest.version + 1
    finally:
        other_process.execute(
            "DELETE FROM consent_text WHERE language = 'en' AND version = %s",
            (newest.version + 1,),
        )


def test_the_snapshot_is_read_again_only_when_the_catalog_changed(
    app: Flask, other_process: psycopg.Connection
):
    with app.app_context():
        first = catalog_snapshot.current()
        assert catalog_snapshot.current() is first
    other_process.execute(WATCHED["language"][0])
    other_process.execute(WATCHED["language"][1])
    with app.app_context():
        assert catalog_snapshot.current() is not first


def test_emails_name_a_withdrawn_destination_as_the_catalog_names_it_now(
    app: Flask, other_process: psycopg.Connection
):
    # A request made before its destination was withdrawn is still written to.
    from quote_service.models import QuoteRequest
    from quote_service.services import notifications

    request = QuoteRequest(
        condition_slug="stroke",
        destination_code="BE",
        treatment_slug="msc",
        preferred_language="nl",
    )
    [names] = other_process.execute("SELECT names FROM destination WHERE code = 'BE'").fetchone()
    other_process.execute(
        "UPDATE destination SET active = false, names = %s WHERE code = 'BE'",
        (json.dumps({**names, "fr": "La Belgique"}),),
    )
    try:
        with app.app_context():
            assert "BE" not in catalog_snapshot.current().destinations  # refused at intake
            labels = notifications.labels(request, "fr")
    finally:
        other_process.execute(
            "UPDATE destination SET active = true, names = %s WHERE code = 'BE'",
            (json.dumps(names),),
        )
    assert labels["destination_name"] == "La Belgique"
    assert labels["condition_name"] and labels["treatment_name"]


def test_a_routing_reads_the_catalog_version_once_and_carries_a_disclaimer_changed_elsewhere(
    app: Flask, app_context, other_process: psycopg.Connection
):
    from quote_service.models import Notification
    from quote_service.services import pipeline
    from tests.routing_fixtures import received_row, submit

    newer = "A newer wording: this service gives general information, never medical advice."
    other_process.execute(
        "INSERT INTO disclaimer (key, version, language, required, active, position, text,"
        " created_at) SELECT key, version + 1, language, required, active, position, %s, now()"
        " FROM disclaimer WHERE key = 'not-medical-advice' AND language = 'nl'"
        " ORDER BY version DESC LIMIT 1",
        (newer,),
    )
    try:
        request = submit(destination="BE", condition="stroke", preferred_language="nl")
        row_id = received_row(request).id
        db.session.commit()
        with statements_counted(db.engine) as statements:
            pipeline.process_received(row_id)
        # The acknowledgement and each clinic's invitation, on one read.
        assert len([s for s in statements if "catalog_version" in s]) == 1
        ack = db.session.execute(
            db.select(Notification).where(
                Notification.quote_request_id == request.id,
                Notification.kind == "acknowledgement",
            )
        ).scalar_one()
        assert ack.status == "pending"
        carried = {d["key"]: d["version"] for d in ack.disclaimers}
        [[newest]] = other_process.execute(
            "SELECT max(version) FROM disclaimer"
            " WHERE key = 'not-medical-advice' AND language = 'nl'"
        ).fetchall()
        assert carried["not-medical-advice"] == newest
        assert "never medical advice" in ack.mime.replace("=\r\n", "").replace("=\n", "")
    finally:
        other_process.execute(
            "DELETE FROM disclaimer WHERE key = 'not-medical-advice' AND language = 'nl'"
            " AND text = %s",
            (newer,),
        )
