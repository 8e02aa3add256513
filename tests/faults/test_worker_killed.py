"""A worker SIGKILLed while it waits on the SMTP server: the email goes out again, as itself."""

from __future__ import annotations

from collections import Counter

import pytest
from flask import Flask

from tests.faults.checks import assert_each_email_arrived_once, assert_one_acknowledgement_each
from tests.faults.conftest import StartWorker
from tests.faults.state import notifications, pending_outbox
from tests.payloads import valid_body
from tests.support.faulty_smtp import FaultySmtpSink

URL = "/api/v1/quote-requests"
REQUESTS = 4
# Short, so the re-send after the crash comes within seconds (it takes up to two
# leases: the first re-publish may still find the send within its lease).
LEASE_SECONDS = 3


@pytest.mark.timeout(90)
def test_a_worker_killed_mid_send_is_replaced_and_the_email_sent_again_with_its_message_id(
    app: Flask, broker: str, faulty_smtp: FaultySmtpSink, start_worker: StartWorker
) -> None:
    faulty_smtp.stall_next()
    first = start_worker(broker, OUTBOX_LEASE_SECONDS=LEASE_SECONDS)
    client = app.test_client()
    references = {}
    for index in range(REQUESTS):
        email = f"crash.{index}@example.org"
        response = client.post(URL, json=valid_body(email=email))
        assert response.status_code == 201
        references[email] = response.get_json()["reference"]

    # The server has taken the first message and holds its reply back: the worker
    # sits inside smtplib.sendmail, after `sending` was committed, before `sent`.
    first.wait_for(lambda: faulty_smtp.wait_stalled(0.1), 30, "the first email to stall")
    [stalled] = faulty_smtp.received
    first.kill()
    faulty_smtp.release()

    second = start_worker(broker, OUTBOX_LEASE_SECONDS=LEASE_SECONDS)
    second.wait_for(
        lambda: all(faulty_smtp.to(email) for email in references) and pending_outbox(app) == 0,
        60,
        "every acknowledgement and a drained outbox",
    )

    records = notifications(app)
    assert Counter(r.reference for r in records) == {ref: 2 for ref in references.values()}
    # No request without its acknowledgement, none with two different ones.
    assert_one_acknowledgement_each(references, records, faulty_smtp.received)
    assert_each_email_arrived_once(records, faulty_smtp.received)
    # The interrupted email was sent again after the lease: two copies, one
    # Message-ID. That is the documented window (the server took the message,
    # `sent` was never committed); mailboxes fold copies by Message-ID, and a
    # duplicate is a smaller harm than a lost acknowledgement.
    stalled_id = str(stalled.message["Message-ID"])
    copies = [r for r in faulty_smtp.received if str(r.message["Message-ID"]) == stalled_id]
    assert len(copies) == 2
    assert copies[0].raw == copies[1].raw
    [record] = [r for r in records if r.message_id == stalled_id]
    assert (record.status, record.attempts) == ("sent", 2)
