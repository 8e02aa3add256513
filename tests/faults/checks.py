"""Assertions shared by the fault tests: every recorded email arrived, as one message."""

from __future__ import annotations

from collections import Counter

from tests.faults.state import SentRecord
from tests.support.smtp import Received


def assert_each_email_arrived_once(records: list[SentRecord], received: list[Received]) -> None:
    """Every notification is `sent` and arrived, and nothing else arrived.

    A second copy is tolerated only as the documented exception: a send
    interrupted after the SMTP server took the message (the worker, or its task,
    killed before `sent` was committed) is sent again after the lease, the same
    bytes with the same Message-ID. So copies of one Message-ID never outnumber
    the attempts recorded for it, and an email sent at the first attempt
    arrived exactly once.
    """
    copies = Counter(str(message.message["Message-ID"]) for message in received)
    assert set(copies) == {record.message_id for record in records}
    for record in records:
        assert record.status == "sent", record
        assert 1 <= copies[record.message_id] <= record.attempts, (
            record,
            copies[record.message_id],
        )


def assert_one_acknowledgement_each(
    references: dict[str, str], records: list[SentRecord], received: list[Received]
) -> None:
    """Each patient (address -> reference) got one acknowledgement: one Message-ID, theirs."""
    acknowledgements = {r.reference: r for r in records if r.kind == "acknowledgement"}
    for email, reference in references.items():
        mine = [message for message in received if email in message.recipients]
        assert mine, f"no acknowledgement reached {email}"
        assert {str(message.message["Message-ID"]) for message in mine} == {
            acknowledgements[reference].message_id
        }
        assert all(reference in message.message["Subject"] for message in mine)
