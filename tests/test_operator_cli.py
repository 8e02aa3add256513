"""Operators' commands: `outbox status`, `requests show`, `providers export|import`."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import delete

from quote_service.extensions import db
from quote_service.models import (
    AccessLog,
    Notification,
    OutboxMessage,
    Provider,
    provider_condition,
    utcnow,
)
from quote_service.services import notifications, outbox, pipeline
from quote_service.services.seed import seed_catalog
from quote_service.services.workflow import add_note
from tests.routing_fixtures import received_row, submit
from tests.support.smtp import SmtpSink

HEADER = "slug,name,destination,conditions,languages,contact_email,daily_capacity,weight,active"
SEEDED = {
    "brussels-neuro-sample",
    "ghent-regenerative-sample",
    "liege-metabolic-sample",
    "st-johns-cell-therapy-sample",
    "english-harbour-recovery-sample",
}


@pytest.fixture
def test_providers(app: Flask) -> Iterator[None]:
    """Delete the providers a test created (slugs `test-...`) and re-seed the catalog's."""
    yield
    with app.app_context():
        db.session.remove()
        ids = db.select(Provider.id).where(Provider.slug.startswith("test-"))
        db.session.execute(
            delete(provider_condition).where(provider_condition.c.provider_id.in_(ids))
        )
        db.session.execute(delete(Provider).where(Provider.slug.startswith("test-")))
        db.session.commit()
        seed_catalog()


def write_csv(tmp_path: Path, *rows: str, header: str = HEADER) -> Path:
    path = tmp_path / "providers.csv"
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def provider_rows(app: Flask) -> dict[str, dict[str, Any]]:
    """Every provider's stored fields, by slug."""
    with app.app_context():
        found = db.session.execute(db.select(Provider)).scalars()
        return {
            p.slug: {
                "name": p.name,
                "destination": p.destination_code,
                "conditions": sorted(c.slug for c in p.conditions),
                "languages": p.languages,
                "contact_email": p.contact_email,
                "daily_capacity": p.daily_capacity,
                "weight": p.weight,
                "active": p.active,
                "sample": p.sample,
                "updated_at": p.updated_at,
            }
            for p in found
        }


def value_of(output: str, label: str) -> str:
    """The value printed after `label:` on its own line."""
    match = re.search(rf"^{re.escape(label)}:\s+(.*)$", output, re.MULTILINE)
    assert match, f"{label!r} missing from:\n{output}"
    return match.group(1)


# --- outbox status -----------------------------------------------------------


def test_outbox_status_of_an_empty_outbox(runner: FlaskCliRunner):
    result = runner.invoke(args=["outbox", "status"])

    assert result.exit_code == 0, result.output
    assert value_of(result.output, "pending rows") == "0"
    assert value_of(result.output, "oldest pending") == "none"
    assert value_of(result.output, "oldest unpublished") == "none"
    assert value_of(result.output, "published more than once") == "0"


def test_outbox_status_counts_pending_unpublished_and_republished_rows(
    app: Flask, runner: FlaskCliRunner
):
    now = utcnow()
    with app.app_context():
        # Never published, waiting 10 minutes: the relay is not running.
        outbox.enqueue(outbox.TOPIC_SEND, {"notification_id": 1}, now - timedelta(minutes=10))
        # Published three times over two hours and still not done.
        stuck = outbox.enqueue(outbox.TOPIC_SEND, {"notification_id": 2}, now - timedelta(hours=2))
        stuck.published_at, stuck.publish_count = now, 3
        # Done work is not pending, however often it was published.
        done = outbox.enqueue(outbox.TOPIC_SEND, {"notification_id": 3}, now - timedelta(days=3))
        done.published_at, done.publish_count, done.completed_at = now, 2, now
        db.session.commit()
        state = outbox.backlog()

    result = runner.invoke(args=["outbox", "status"])

    assert result.exit_code == 0, result.output
    assert (state["pending"], state["unpublished"], state["republished"]) == (2, 1, 1)
    assert value_of(result.output, "pending rows") == "2"
    assert re.fullmatch(r"2h 0m \d+s", value_of(result.output, "oldest pending"))
    assert value_of(result.output, "never published") == "1"
    assert re.fullmatch(r"10m \d+s", value_of(result.output, "oldest unpublished"))
    assert value_of(result.output, "published more than once") == "1"


# --- requests show -----------------------------------------------------------


def test_show_prints_status_routing_emails_and_timeline_but_no_bodies(
    app: Flask, runner: FlaskCliRunner, smtp: SmtpSink
):
    message = "Left side weakness since March."
    with app.app_context():
        request = submit(destination="BE", condition="stroke", message=message)
        reference, request_id = request.reference, request.id
        assert pipeline.process_received(received_row(request).id) == "routed"
        acknowledgement = db.session.execute(
            db.select(Notification).where(Notification.kind == "acknowledgement")
        ).scalar_one()
        ack_subject = acknowledgement.subject
        send_row = db.session.execute(
            db.select(OutboxMessage).where(
                OutboxMessage.payload["notification_id"].as_integer() == acknowledgement.id
            )
        ).scalar_one()
        assert notifications.deliver(send_row.id) == "sent"
        add_note(reference, "Patient called about MSC costs.", "coordinator:1")

    result = runner.invoke(args=["requests", "show", reference.lower()])

    assert result.exit_code == 0, result.output
    output = result.output
    assert value_of(output, "reference") == reference
    assert value_of(output, "status") == "routed"
    assert value_of(output, "destination") == "BE"
    assert value_of(output, "condition") == "stroke"
    assert value_of(output, "provider").split()[0] in SEEDED
    assert value_of(output, "assignee") == "none"
    assert value_of(output, "patient") == "Marie Dubois <marie.dubois@example.org>"
    assert re.search(r"^  acknowledgement\s+sent\s+attempts 1$", output, re.MULTILINE)
    assert re.search(r"^  provider\s+pending\s+attempts 0$", output, re.MULTILINE)
    # Each event: when, what, who.
    timeline = [line.split() for line in output.split("timeline:\n", 1)[1].splitlines()]
    assert all(len(words) == 3 for words in timeline)
    assert all(datetime.fromisoformat(words[0]).tzinfo for words in timeline)
    assert timeline[0][1:] == ["received", "patient"]
    assert timeline[1][1] == "routed"
    assert "acknowledgement_sent" in [words[1] for words in timeline]
    assert ["note", "coordinator:1"] in [words[1:] for words in timeline]
    # Never the patient's message, an email's subject or body, or a note's text.
    assert message not in output
    assert ack_subject not in output
    assert max(smtp.received[0].text().splitlines(), key=len) not in output
    assert "MSC costs" not in output
    # An operator's read of personal data is audited like a coordinator's.
    with app.app_context():
        reads = db.session.execute(
            db.select(AccessLog.actor, AccessLog.action).where(
                AccessLog.quote_request_id == request_id
            )
        ).all()
    assert reads == [("cli", "read_detail")]


def test_show_help_warns_that_it_prints_personal_data(runner: FlaskCliRunner):
    result = runner.invoke(args=["requests", "show", "--help"])
    assert result.exit_code == 0
    assert "personal data" in result.output


def test_show_of_an_unknown_reference_fails(runner: FlaskCliRunner):
    result = runner.invoke(args=["requests", "show", "QR-AAAAAAAA"])
    assert result.exit_code == 1
    assert "No quote request QR-AAAAAAAA" in result.output


# --- providers export --------------------------------------------------------


def test_export_writes_every_provider_as_csv(runner: FlaskCliRunner, tmp_path: Path):
    result = runner.invoke(args=["providers", "export"])

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == HEADER
    assert {line.split(",")[0] for line in lines[1:]} == SEEDED
    assert (
        "brussels-neuro-sample,Brussels Neuro-Regeneration Centre (sample),BE,"
        "stroke;stroke-rehabilitation,fr;nl;en,intake@brussels-neuro.sample.example,20,2,true"
    ) in lines

    target = tmp_path / "out.csv"
    to_file = runner.invoke(args=["providers", "export", "--file", str(target)])
    assert to_file.exit_code == 0, to_file.output
    assert target.read_text(encoding="utf-8") == result.stdout


def test_exporting_then_importing_changes_nothing(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path, test_providers: None
):
    target = tmp_path / "providers.csv"
    assert runner.invoke(args=["providers", "export", "--file", str(target)]).exit_code == 0
    before = provider_rows(app)

    result = runner.invoke(args=["providers", "import", "--file", str(target)])

    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == "0 created, 0 updated, 5 unchanged"
    assert provider_rows(app) == before


# --- providers import --------------------------------------------------------


def test_import_creates_new_providers_and_updates_existing_ones_by_slug(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path, test_providers: None
):
    before = provider_rows(app)
    path = write_csv(
        tmp_path,
        "test-leuven,Leuven Test Clinic,BE,stroke; diabetes-type-1,en;de,"
        "intake@leuven.test.example,5,3,",
        "test-antigua,Antigua Test Clinic,ag,diabetes-type-2,en,"
        "intake@antigua.test.example,7,1,false",
        '"brussels-neuro-sample","Brussels, renamed (sample)",BE,stroke,fr;en,'
        "intake@brussels-neuro.sample.example,4,9,true",
    )

    result = runner.invoke(args=["providers", "import", "--file", str(path)])

    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == "2 created, 1 updated, 0 unchanged"
    after = provider_rows(app)
    assert after["test-leuven"] | {"updated_at": None} == {
        "name": "Leuven Test Clinic",
        "destination": "BE",
        "conditions": ["diabetes-type-1", "stroke"],
        "languages": ["en", "de"],
        "contact_email": "intake@leuven.test.example",
        "daily_capacity": 5,
        "weight": 3,
        "active": True,  # an empty cell
        "sample": False,
        "updated_at": None,
    }
    assert (after["test-antigua"]["destination"], after["test-antigua"]["active"]) == ("AG", False)
    brussels = after["brussels-neuro-sample"]
    assert brussels["name"] == "Brussels, renamed (sample)"
    assert brussels["conditions"] == ["stroke"]
    assert brussels["languages"] == ["fr", "en"]
    assert (brussels["daily_capacity"], brussels["weight"]) == (4, 9)
    assert brussels["sample"] is True  # the catalog's mark stays
    assert brussels["updated_at"] > before["brussels-neuro-sample"]["updated_at"]
    untouched = SEEDED - {"brussels-neuro-sample"}
    assert {slug: after[slug] for slug in untouched} == {slug: before[slug] for slug in untouched}


def test_one_bad_row_refuses_the_whole_file_naming_every_bad_row(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path, test_providers: None
):
    before = provider_rows(app)
    path = write_csv(
        tmp_path,
        "test-good,Good Test Clinic,BE,stroke,en,intake@good.test.example,5,1,true",
        "test-bad-email,Bad Email Clinic,BE,stroke,en,not-an-email,5,1,true",
        "test-type-1,Type 1 Clinic,AG,diabetes-type-1;no-such-condition,en,"
        "intake@t1.test.example,5,1,true",
        "test-nowhere,Nowhere Clinic,ZZ,stroke,en;xx,intake@nowhere.test.example,five,0,maybe",
        "test-good,Good Again,BE,stroke,en,intake@again.test.example,5,1,true",
        "brussels-neuro-sample,Changed (sample),BE,stroke,en,intake@b.sample.example,1,1,true",
    )

    result = runner.invoke(args=["providers", "import", "--file", str(path)])

    assert result.exit_code == 1
    problems = [line for line in result.output.splitlines() if line.startswith("row ")]
    assert {line.split(":")[0] for line in problems} == {"row 3", "row 4", "row 5", "row 6"}
    assert "row 3: contact_email:" in result.output
    assert "no-such-condition" in result.output
    assert "diabetes-type-1 is not offered at AG" in result.output
    for field in ("daily_capacity", "weight", "active"):
        assert f"row 5: {field}:" in result.output
    assert "row 6: slug test-good is on row 2 already" in result.output
    # Nothing was written: neither the good new row nor the good change.
    assert provider_rows(app) == before


def test_catalog_errors_of_a_row_are_the_providers_api_errors(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path, test_providers: None
):
    path = write_csv(
        tmp_path, "test-far,Far Clinic,FR,stroke,en;xx,intake@far.test.example,5,1,true"
    )

    result = runner.invoke(args=["providers", "import", "--file", str(path)])

    assert result.exit_code == 1
    assert "row 2: destination: We do not offer this destination." in result.output
    assert "row 2: languages: Unknown language: xx." in result.output
    assert "test-far" not in provider_rows(app)


def test_a_rows_schema_and_catalog_errors_are_named_together(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path, test_providers: None
):
    # A bad email (the schema's) and a condition Antigua does not offer and an
    # unknown language (the catalog's), on one row: all three in one refusal.
    path = write_csv(
        tmp_path, "test-both,Both Clinic,AG,diabetes-type-1,en;xx,not-an-email,5,1,true"
    )

    result = runner.invoke(args=["providers", "import", "--file", str(path)])

    assert result.exit_code == 1
    problems = [line for line in result.output.splitlines() if line.startswith("row ")]
    assert problems == [
        "row 2: contact_email: Enter a valid email address: it needs one @ sign, "
        "as in name@example.org.",
        "row 2: conditions: diabetes-type-1 is not offered at AG.",
        "row 2: languages: Unknown language: xx.",
    ]
    assert "test-both" not in provider_rows(app)


def test_an_existing_providers_row_is_checked_as_the_change_it_makes(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path, test_providers: None
):
    # A seeded clinic moved to Antigua with a condition Antigua does not offer,
    # and a weight out of range: both named, and the clinic stays as it was.
    before = provider_rows(app)
    path = write_csv(
        tmp_path,
        "brussels-neuro-sample,Brussels (sample),AG,diabetes-type-1,en,"
        "intake@brussels-neuro.sample.example,20,0,true",
    )

    result = runner.invoke(args=["providers", "import", "--file", str(path)])

    assert result.exit_code == 1
    assert "row 2: weight: Must be greater than or equal to 1" in result.output
    assert "row 2: conditions: diabetes-type-1 is not offered at AG." in result.output
    assert provider_rows(app) == before


@pytest.mark.parametrize(
    "header",
    [
        "slug,name,destination,conditions,languages,contact_email,daily_capacity,weight",
        HEADER + ",notes",
        HEADER.replace("slug", "name"),
    ],
)
def test_a_wrong_header_is_refused(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path, header: str, test_providers: None
):
    path = write_csv(
        tmp_path,
        "test-x,X Clinic,BE,stroke,en,intake@x.test.example,5,1,true",
        header=header,
    )

    result = runner.invoke(args=["providers", "import", "--file", str(path)])

    assert result.exit_code == 1
    assert f"row 1: the header must be {HEADER}" in result.output
    assert "test-x" not in provider_rows(app)


def test_a_row_with_too_few_or_too_many_cells_is_refused(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path, test_providers: None
):
    path = write_csv(
        tmp_path,
        "test-short,Short Clinic,BE,stroke",
        "test-long,Long Clinic,BE,stroke,en,intake@long.test.example,5,1,true,extra",
    )

    result = runner.invoke(args=["providers", "import", "--file", str(path)])

    assert result.exit_code == 1
    assert "row 2: expected 9 cells" in result.output
    assert "row 3: expected 9 cells" in result.output
    assert not {"test-short", "test-long"} & set(provider_rows(app))


def test_row_numbers_are_the_files_line_numbers_blank_lines_included(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path, test_providers: None
):
    path = write_csv(
        tmp_path,
        "",
        "test-ok,Ok Clinic,BE,stroke,en,intake@ok.test.example,5,1,true",
        "test-bad,Bad Clinic,BE,stroke,en,intake@bad.test.example,many,1,true",
    )

    result = runner.invoke(args=["providers", "import", "--file", str(path)])

    assert result.exit_code == 1
    assert "row 4: daily_capacity: Must be a whole number." in result.output
    assert not {"test-ok", "test-bad"} & set(provider_rows(app))


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        (HEADER.encode() + b"\ntest-caf\xe9,Caf\xe9,BE,stroke,en,a@b.example,1,1,true\n", "UTF-8"),
        (HEADER.encode() + b"\ntest-nul,N\x00,BE,stroke,en,a@b.example,1,1,true\n", "control"),
        # Beyond the csv module's field size limit.
        (HEADER.encode() + b"\ntest-big," + b"x" * 200_000 + b",BE,stroke,en,a,1,1,true\n", "CSV"),
    ],
)
def test_an_unreadable_file_is_refused_cleanly(
    app: Flask,
    runner: FlaskCliRunner,
    tmp_path: Path,
    content: bytes,
    complaint: str,
    test_providers: None,
):
    path = tmp_path / "providers.csv"
    path.write_bytes(content)

    result = runner.invoke(args=["providers", "import", "--file", str(path)])

    assert result.exit_code == 1
    assert complaint in result.output
    assert "Traceback" not in result.output
    assert not [slug for slug in provider_rows(app) if slug.startswith("test-")]
