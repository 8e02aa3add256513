"""A worker SIGKILLed mid-send: with the service's default timings, all is done within 2 minutes.

The email the server had taken when the worker died goes out again, as itself
(same bytes, same Message-ID): the one documented duplicate. Every other
request in flight, or queued, completes once.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest
from flask import Flask

from tests.faults.checks import assert_each_email_arrived_once, assert_one_acknowledgement_each
from tests.faults.conftest import StartWorker
from tests.faults.state import notifications, pending_outbox
from tests.payloads import valid_body
from tests.support.smtp import SmtpSink

URL = "/api/v1/quote-requests"
REQUESTS = 10
# The promise of the shared design: every affected request completes within
# 2 minutes of a worker being back.
RECOVERY_SECONDS = 120
SLOW_SMTP_SECONDS = 0.2


@pytest.mark.timeout(RECOVERY_SECONDS + 60)
def test_a_worker_killed_mid_send_is_replaced_and_all_completes_within_two_minutes(
    app: Flask, broker: str, faulty_smtp: SmtpSink, start_worker: StartWorker
) -> None:
    faulty_smtp.slow_down(SLOW_SMTP_SECONDS)
    faulty_smtp.stall_next()
    # OUTBOX_LEASE_SECONDS unset: the deployment's default is what is promised.
    first = start_worker(broker, concurrency=2, OUTBOX_LEASE_SECONDS=None)
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
    stalled = faulty_smtp.received[0]
    first.kill()
    faulty_smtp.release()

    second = start_worker(broker, concurrency=2, OUTBOX_LEASE_SECONDS=None)
    back = time.monotonic()
    second.wait_for(
        lambda: all(faulty_smtp.to(email) for email in references) and pending_outbox(app) == 0,
        RECOVERY_SECONDS,
        "every acknowledgement and a drained outbox within 2 minutes of the new worker",
    )
    assert time.monotonic() - back < RECOVERY_SECONDS

    records = notifications(app)
    assert Counter(r.reference for r in records) == {ref: 2 for ref in references.values()}
    # No request without its acknowledgement, none with two different ones.
    assert_one_acknowledgement_each(references, records, faulty_smtp.received)
    assert_each_email_arrived_once(records, faulty_smtp.received)
    # The interrupted email was sent again once its lease ran out: two copies,
    # one Message-ID. That is the documented window (the server took the
    # message, `sent` was never committed); mailboxes fold copies by Message-ID.
    stalled_id = str(stalled.message["Message-ID"])
    copies = [r for r in faulty_smtp.received if str(r.message["Message-ID"]) == stalled_id]
    assert len(copies) == 2
    assert copies[0].raw == copies[1].raw
    [record] = [r for r in records if r.message_id == stalled_id]
    assert (record.status, record.attempts) == ("sent", 2)
    # Only emails the server had taken when the worker died (one per pool
    # process at most) went out twice; every other exactly once.
    twice = [
        i
        for i, n in Counter(str(r.message["Message-ID"]) for r in faulty_smtp.received).items()
        if n > 1
    ]
    assert stalled_id in twice and len(twice) <= 2, twice
