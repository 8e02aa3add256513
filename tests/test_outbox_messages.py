"""Several outbox rows in one message: the relay groups them, the worker runs each as its own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask

from quote_service.extensions import db
from quote_service.models import OutboxMessage, utcnow
from quote_service.services import outbox
from tests.routing_fixtures import received_row, submit
from tests.support.polling import wait_until
from tests.test_logging import LogLines, log_lines  # noqa: F401 (a fixture)
from tests.test_worker_pipeline import worker_app  # noqa: F401 (a fixture)

ROUTE, SEND = "quote.route_request", "quote.send_notification"


def test_the_relay_puts_a_tasks_due_rows_in_messages_of_at_most_rows_per_message(
    app: Flask, app_context, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setitem(app.config, "OUTBOX_ROWS_PER_MESSAGE", 10)
    sends = [outbox.enqueue(outbox.TOPIC_SEND, {"notification_id": n}) for n in range(25)]
    routes = [outbox.enqueue(outbox.TOPIC_RECEIVED, {"quote_request_id": n}) for n in range(3)]
    for number, row in enumerate(sends + routes):
        row.payload = {**row.payload, "request_id": f"rid-{number}"}
    db.session.commit()
    published: list[tuple[str, list[int], list[str | None]]] = []
    outbox.relay_once(publish=lambda task, ids, broker, rids: published.append((task, ids, rids)))

    assert [(task, len(ids)) for task, ids, _ in published] == [
        (SEND, 10),
        (SEND, 10),
        (SEND, 5),
        (ROUTE, 3),
    ]
    assert [i for _, ids, _ in published for i in ids] == [row.id for row in sends + routes]
    for _, ids, request_ids in published:  # each row's request id beside it
        by_id = {row.id: row.payload["request_id"] for row in sends + routes}
        assert request_ids == [by_id[i] for i in ids]
    rows = db.session.execute(db.select(OutboxMessage)).scalars().all()
    assert {(row.publish_count, row.published_at is not None) for row in rows} == {(1, True)}


def test_one_row_per_message_when_set_to_one(
    app: Flask, app_context, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setitem(app.config, "OUTBOX_ROWS_PER_MESSAGE", 1)
    for n in range(3):
        outbox.enqueue(outbox.TOPIC_SEND, {"notification_id": n})
    db.session.commit()
    published: list[list[int]] = []
    outbox.relay_once(publish=lambda task, ids, broker, rids: published.append(ids))
    assert [len(ids) for ids in published] == [1, 1, 1]


@pytest.fixture
def held_back(app: Flask, app_context) -> Iterator[list[tuple[int, str]]]:
    """Three received requests whose rows the relay leaves alone: (outbox row id, reference).

    The second row names a request that does not exist, so its routing fails.
    """
    later = utcnow().replace(year=utcnow().year + 1)
    rows = []
    for number in range(3):
        request = submit(email=f"batch-{number}@example.org", destination="BE", condition="stroke")
        row = received_row(request)
        row.available_at = later  # the test publishes it itself
        if number == 1:
            row.payload = {**row.payload, "quote_request_id": 10**9}
        rows.append((row.id, request.reference))
    db.session.commit()
    yield rows


def row_state(app: Flask, row_id: int) -> tuple[bool, int, str | None]:
    with app.app_context():
        row = db.session.get_one(OutboxMessage, row_id)
        state = (row.completed_at is not None, row.failures, row.last_error)
        db.session.remove()
    return state


def test_a_row_that_fails_leaves_the_others_of_its_message_done_each_under_its_request_id(
    held_back: list[tuple[int, str]], worker_app: Flask, smtp, log_lines: LogLines
):
    (first, first_ref), (bad, _), (third, third_ref) = held_back
    worker_app.extensions["celery"].send_task(
        ROUTE, args=[[first, bad, third]], headers={"request_ids": ["rid-1", "rid-2", "rid-3"]}
    )
    assert wait_until(lambda: row_state(worker_app, bad)[1] == 1)
    assert wait_until(lambda: row_state(worker_app, first)[0] and row_state(worker_app, third)[0])
    _, failures, last_error = row_state(worker_app, bad)  # tried again after a pause
    assert failures >= 1 and last_error == "NoResultFound"
    assert wait_until(lambda: len(smtp.to("batch-2@example.org")) == 1)
    assert len(smtp.to("batch-0@example.org")) == 1

    # Each row logs under its own request id, and so do the emails its routing queued.
    [routed] = log_lines.where(message=f"routing of {third_ref}: routed")
    [sent] = log_lines.where(message=f"sent acknowledgement for {first_ref}")
    assert (routed["request_id"], sent["request_id"]) == ("rid-3", "rid-1")
    [failed] = log_lines.where(logger="worker.tasks", task_name=ROUTE)
    assert "NoResultFound" in failed["message"] and failed["request_id"] == "rid-2"


def test_rows_not_reached_within_the_budget_go_on_in_a_message_of_their_own(
    held_back: list[tuple[int, str]],
    worker_app: Flask,
    log_lines: LogLines,
    monkeypatch: pytest.MonkeyPatch,
):
    import worker.tasks

    monkeypatch.setattr(worker.tasks, "BATCH_SECONDS", 0.0)  # every row past the first
    (first, first_ref), _, (third, third_ref) = held_back
    worker_app.extensions["celery"].send_task(ROUTE, args=[[first, third]])
    assert wait_until(lambda: row_state(worker_app, first)[0] and row_state(worker_app, third)[0])
    [one] = log_lines.where(message=f"routing of {first_ref}: routed")
    [other] = log_lines.where(message=f"routing of {third_ref}: routed")
    assert one["task_name"] == other["task_name"] == ROUTE
    assert one["task_id"] != other["task_id"]  # two messages, two tasks


def test_a_failing_row_lets_the_rest_run_and_a_database_away_stops_the_message(
    app_context, monkeypatch: pytest.MonkeyPatch
):
    from sqlalchemy.exc import OperationalError

    import worker.tasks
    from worker.tasks import run_outbox_rows, send_notification

    monkeypatch.setattr(worker.tasks, "TRANSIENT_RETRY_SECONDS", 0.2)
    rows = [outbox.enqueue(outbox.TOPIC_SEND, {"notification_id": n}) for n in range(3)]
    db.session.commit()
    first, second, third = (row.id for row in rows)
    ran: list[int] = []

    def broken_first(outbox_id: int, holder: str) -> str:
        ran.append(outbox_id)
        if outbox_id == first:
            raise LookupError("a bug this row meets")
        return "done"

    with pytest.raises(LookupError):  # raised at the end, after the others ran
        run_outbox_rows(send_notification, broken_first, [first, second, third])
    assert ran == [first, second, third]

    ran.clear()

    def database_away_at_second(outbox_id: int, holder: str) -> str:
        ran.append(outbox_id)
        if outbox_id == second:
            raise OperationalError("SELECT 1", {}, Exception("server closed the connection"))
        return "done"

    with pytest.raises(OperationalError):
        run_outbox_rows(send_notification, database_away_at_second, [first, second, third])
    assert first in ran and third not in ran  # the third is left to the relay
