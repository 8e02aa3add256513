"""The SMTP server's answers through a real worker: 421 is retried once it accepts, 550 never."""

from __future__ import annotations

import pytest
from flask import Flask

from tests.conftest import Caller
from tests.faults.conftest import StartWorker
from tests.faults.state import SentRecord, notifications, pending_outbox
from tests.payloads import valid_body
from tests.support.smtp import ACCEPTED, SmtpSink

URL = "/api/v1/quote-requests"
GREYLISTED = "421 4.7.0 Greylisted, try again later"
NO_SUCH_USER = "550 5.1.1 No such user"


def submit(app: Flask, email: str) -> str:
    response = app.test_client().post(URL, json=valid_body(email=email))
    assert response.status_code == 201
    return response.get_json()["reference"]


def acknowledgement_of(app: Flask, reference: str) -> SentRecord:
    [record] = [
        r for r in notifications(app) if r.reference == reference and r.kind == "acknowledgement"
    ]
    return record


def detail(app: Flask, coordinator: Caller, reference: str) -> dict:
    response = app.test_client().get(f"{URL}/{reference}", headers=coordinator.headers)
    assert response.status_code == 200
    return response.get_json()


@pytest.mark.timeout(60)
def test_421_then_accepted_delivers_the_acknowledgement_once(
    app: Flask,
    broker: str,
    faulty_smtp: SmtpSink,
    start_worker: StartWorker,
    coordinator: Caller,
) -> None:
    email = "greylisted@example.org"
    faulty_smtp.reply_to(email, GREYLISTED)
    worker = start_worker(broker)
    reference = submit(app, email)

    worker.wait_for(lambda: pending_outbox(app) == 0, 30, "a drained outbox")

    assert [a.reply for a in faulty_smtp.attempts_for(email)] == [GREYLISTED, ACCEPTED]
    [delivered] = faulty_smtp.to(email)
    record = acknowledgement_of(app, reference)
    assert str(delivered.message["Message-ID"]) == record.message_id
    assert (record.status, record.attempts) == ("sent", 2)
    body = detail(app, coordinator, reference)
    [acknowledgement] = [n for n in body["notifications"] if n["kind"] == "acknowledgement"]
    assert acknowledgement["status"] == "sent"
    assert acknowledgement["last_error"] is None
    types = [event["type"] for event in body["timeline"]]
    assert types.count("acknowledgement_deferred") == 1
    assert types.count("acknowledgement_sent") == 1
    assert types.index("acknowledgement_deferred") < types.index("acknowledgement_sent")


@pytest.mark.timeout(60)
def test_550_fails_the_acknowledgement_at_once_and_coordinators_see_it(
    app: Flask,
    broker: str,
    faulty_smtp: SmtpSink,
    start_worker: StartWorker,
    coordinator: Caller,
) -> None:
    email = "no.such.user@example.org"
    faulty_smtp.reply_to(email, NO_SUCH_USER, NO_SUCH_USER)
    worker = start_worker(broker)
    reference = submit(app, email)

    worker.wait_for(lambda: pending_outbox(app) == 0, 30, "a drained outbox")

    # One attempt only: the second scripted 550 was never asked for.
    assert [a.reply for a in faulty_smtp.attempts_for(email)] == [NO_SUCH_USER]
    assert faulty_smtp.to(email) == []
    record = acknowledgement_of(app, reference)
    assert (record.status, record.attempts) == ("failed", 1)
    # The provider's email is not held back by the patient's bad address.
    assert [r.status for r in notifications(app) if r.kind == "provider"] == ["sent"]

    body = detail(app, coordinator, reference)
    [acknowledgement] = [n for n in body["notifications"] if n["kind"] == "acknowledgement"]
    assert acknowledgement["status"] == "failed"
    assert acknowledgement["attempts"] == 1
    assert acknowledgement["last_error"].startswith("550")
    [failed] = [event for event in body["timeline"] if event["type"] == "acknowledgement_failed"]
    assert failed["actor"] == "system"
    assert failed["note"].startswith("550")
    assert "acknowledgement_deferred" not in [event["type"] for event in body["timeline"]]
