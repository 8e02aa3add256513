"""One SMTP connection per sending thread, kept between sends, never past a failure."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from quote_service.mail.sender import (
    PermanentSendError,
    SmtpSender,
    TransientSendError,
    close_kept_connection,
)
from tests.support.processes import free_port
from tests.support.smtp import SmtpSink

MESSAGE = (
    b"From: no-reply@quote-service.example\r\nTo: {to}\r\nSubject: test\r\n"
    b"Message-ID: <{n}@quote-service.example>\r\n\r\nHello.\r\n"
)


def raw(to: str, number: int) -> bytes:
    return MESSAGE.replace(b"{to}", to.encode()).replace(b"{n}", str(number).encode())


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    server = SmtpSink(free_port())
    server.start()
    yield server
    close_kept_connection()
    server.stop()


def sender_for(sink: SmtpSink) -> SmtpSender:
    return SmtpSender(sink.host, sink.port, "no-reply@quote-service.example", timeout=5)


def peers(sink: SmtpSink) -> list[tuple[str, int]]:
    return [attempt.peer for attempt in sink.attempts]


def test_consecutive_sends_share_one_connection(sink: SmtpSink) -> None:
    sender = sender_for(sink)
    for number in range(3):
        sender.send(f"patient.{number}@example.org", raw(f"patient.{number}@example.org", number))
    assert [r.recipients for r in sink.received] == [[f"patient.{n}@example.org"] for n in range(3)]
    assert len(set(peers(sink))) == 1


def test_after_a_refusal_the_next_send_opens_a_new_connection(sink: SmtpSink) -> None:
    sender = sender_for(sink)
    sink.reply_next("451 try again later", "550 no such user")
    with pytest.raises(TransientSendError, match="451"):
        sender.send("a@example.org", raw("a@example.org", 1))
    with pytest.raises(PermanentSendError, match="550"):
        sender.send("a@example.org", raw("a@example.org", 2))
    sender.send("a@example.org", raw("a@example.org", 3))
    assert [a.reply.split()[0] for a in sink.attempts] == ["451", "550", "250"]
    assert len(set(peers(sink))) == 3
    assert len(sink.received) == 1


def test_a_kept_connection_the_server_dropped_is_replaced_before_sending() -> None:
    port = free_port()
    first = SmtpSink(port)
    first.start()
    sender = SmtpSender(first.host, port, "no-reply@quote-service.example", timeout=5)
    try:
        sender.send("a@example.org", raw("a@example.org", 1))
    finally:
        first.stop()
    # The server comes back on the same port, as after a restart: the kept
    # connection is dead, and the send goes over a new one, once.
    again = SmtpSink(port)
    again.start()
    try:
        sender.send("b@example.org", raw("b@example.org", 2))
        close_kept_connection()
    finally:
        again.stop()
    assert [r.recipients for r in first.received] == [["a@example.org"]]
    assert [r.recipients for r in again.received] == [["b@example.org"]]


def test_a_connection_is_not_shared_with_another_server(sink: SmtpSink) -> None:
    other = SmtpSink(free_port())
    other.start()
    try:
        sender_for(sink).send("a@example.org", raw("a@example.org", 1))
        sender_for(other).send("b@example.org", raw("b@example.org", 2))
        sender_for(sink).send("c@example.org", raw("c@example.org", 3))
    finally:
        other.stop()
    assert [r.recipients for r in sink.received] == [["a@example.org"], ["c@example.org"]]
    assert [r.recipients for r in other.received] == [["b@example.org"]]


def test_a_forked_child_opens_its_own_connection_and_leaves_the_parents_alone(
    sink: SmtpSink,
) -> None:
    sender = sender_for(sink)
    sender.send("parent@example.org", raw("parent@example.org", 1))
    child = os.fork()
    if child == 0:  # the child: it inherited the kept connection, and must not touch it
        code = 1
        try:
            sender.send("child@example.org", raw("child@example.org", 2))
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    sender.send("parent@example.org", raw("parent@example.org", 3))
    first, from_child, again = peers(sink)
    assert first == again != from_child  # the parent's connection lived on
