"""A worker SIGKILLed between a request's invitation emails: every clinic gets its invitation."""

from __future__ import annotations

from collections import Counter

import pytest
from flask import Flask

from quote_service.extensions import db
from quote_service.models import Invitation
from tests.faults.checks import assert_each_email_arrived_once
from tests.faults.conftest import StartWorker
from tests.faults.state import notifications, pending_outbox
from tests.payloads import minimal_body
from tests.support.smtp import SmtpSink

URL = "/api/v1/quote-requests"
LEASE_SECONDS = 3
CLINICS = ("alfa", "bravo", "charlie")


@pytest.mark.timeout(90)
def test_a_worker_killed_between_invitation_emails_still_invites_each_clinic_once(
    app: Flask,
    broker: str,
    faulty_smtp: SmtpSink,
    start_worker: StartWorker,
    portugal,
) -> None:
    for index, slug in enumerate(CLINICS):
        portugal(slug, weight=10 - index)
    faulty_smtp.stall_next("@clinic.test.example")
    first = start_worker(broker, OUTBOX_LEASE_SECONDS=LEASE_SECONDS, QUOTE_FANOUT=3)
    response = app.test_client().post(
        URL, json=minimal_body(destination="PT", condition="stroke", email="inv@example.org")
    )
    assert response.status_code == 201

    # The first invitation email is in the server's hands, its reply held back:
    # the worker is killed before it can send the other two.
    first.wait_for(lambda: faulty_smtp.wait_stalled(0.1), 30, "the first email to stall")
    stalled = faulty_smtp.received[-1]
    assert stalled.recipients[0].endswith("@clinic.test.example")
    assert len(faulty_smtp.received) == 2  # the acknowledgement went first
    first.kill()
    faulty_smtp.release()

    second = start_worker(broker, OUTBOX_LEASE_SECONDS=LEASE_SECONDS, QUOTE_FANOUT=3)
    second.wait_for(
        lambda: (
            all(faulty_smtp.to(f"{slug}@clinic.test.example") for slug in CLINICS)
            and faulty_smtp.to("inv@example.org")
            and pending_outbox(app) == 0
        ),
        60,
        "every invitation, the acknowledgement and a drained outbox",
    )

    records = notifications(app)
    assert Counter(r.kind for r in records) == {"provider": 3, "acknowledgement": 1}
    assert_each_email_arrived_once(records, faulty_smtp.received)
    # One invitation (one link, one Message-ID) per clinic, never a second one.
    for slug in CLINICS:
        ids = {str(m.message["Message-ID"]) for m in faulty_smtp.to(f"{slug}@clinic.test.example")}
        assert len(ids) == 1, slug
    with app.app_context():
        rows = list(db.session.execute(db.select(Invitation)).scalars())
        db.session.remove()
    assert sorted(i.status for i in rows) == ["open", "open", "open"]
