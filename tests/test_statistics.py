"""GET /api/v1/statistics: counts, median response times and SLA breaches."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask

from quote_service.extensions import db
from quote_service.models import Event, Notification, QuoteRequest, RequestStatus, utcnow
from quote_service.services import notifications, pipeline
from quote_service.services.statistics import request_statistics
from tests.routing_fixtures import received_row, submit

URL = "/api/v1/statistics"


def make_request(
    *,
    destination: str = "BE",
    condition: str = "stroke",
    status: str | None = None,
    age: timedelta = timedelta(0),
    route: bool = False,
) -> QuoteRequest:
    """A stored request, routed if asked, its status and creation time set by hand."""
    request = submit(destination=destination, condition=condition)
    if route:
        pipeline.process_received(received_row(request).id)
    request = db.session.get_one(QuoteRequest, request.id)
    if status is not None:
        request.status = status
    request.created_at = utcnow() - age
    db.session.commit()
    return request


def acknowledged(request: QuoteRequest, after: timedelta) -> None:
    """Mark the request's acknowledgement sent `after` its creation."""
    ack = db.session.execute(
        db.select(Notification).where(
            Notification.quote_request_id == request.id, Notification.kind == "acknowledgement"
        )
    ).scalar_one()
    ack.status = "sent"
    ack.sent_at = request.created_at + after
    db.session.commit()


def reviewed(request: QuoteRequest, after: timedelta) -> None:
    """Record the transition to in_review the way the workflow does: an event named for it."""
    request.status = "in_review"
    db.session.add(
        Event(
            quote_request_id=request.id,
            type="in_review",
            actor="user:coordinator@quote-service.example",
            at=request.created_at + after,
        )
    )
    db.session.commit()


def get(client, caller, **query: str):
    response = client.get(URL, query_string=query, headers=caller.headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_counts_list_every_status_destination_and_condition_with_zeros(
    client, app_context, coordinator
):
    make_request(destination="BE", condition="stroke", route=True)
    make_request(destination="BE", condition="stroke", status="quoted")
    make_request(destination="AG", condition="diabetes-type-2", status="closed")

    body = get(client, coordinator)
    counts = body["counts"]
    assert counts["total"] == 3
    assert list(counts["by_status"]) == list(RequestStatus)
    assert counts["by_status"] == {
        **dict.fromkeys(RequestStatus, 0),
        "routed": 1,
        "quoted": 1,
        "closed": 1,
    }
    assert counts["by_destination"]["BE"] == 2
    assert counts["by_destination"]["AG"] == 1
    assert counts["by_condition"]["stroke"] == 2
    assert counts["by_condition"]["diabetes-type-2"] == 1
    assert counts["by_condition"]["diabetes-type-1"] == 0
    assert sum(counts["by_destination"].values()) == sum(counts["by_condition"].values()) == 3


def test_an_empty_queue_is_all_zeros_and_no_medians(client, app_context, admin):
    body = get(client, admin)
    assert body["counts"]["total"] == 0
    assert set(body["counts"]["by_status"].values()) == {0}
    assert {"BE", "AG"} <= set(body["counts"]["by_destination"])
    assert set(body["counts"]["by_destination"].values()) == {0}
    assert "stroke" in body["counts"]["by_condition"]
    assert body["median_seconds"] == {
        "to_acknowledgement": None,
        "to_in_review": None,
        "to_first_quote": None,
    }
    assert body["sla"] == {"first_response_hours": 24, "breached": 0}


def test_spam_shows_only_in_by_status(client, app_context, coordinator):
    make_request(destination="BE", condition="stroke")
    spam = submit(destination="AG", condition="stroke", website="http://spam.example")
    assert spam.status == "spam"
    spam.created_at = utcnow() - timedelta(days=3)  # old enough to breach, were it real
    db.session.commit()

    counts = get(client, coordinator)["counts"]
    assert counts["by_status"]["spam"] == 1
    assert counts["total"] == 1
    assert counts["by_destination"]["AG"] == 0
    assert counts["by_condition"]["stroke"] == 1
    assert get(client, coordinator)["sla"]["breached"] == 0


def test_created_after_and_before_bound_the_requests_counted(client, app_context, coordinator):
    now = utcnow().replace(microsecond=0)
    for days in (10, 5, 1):
        request = make_request()
        request.created_at = now - timedelta(days=days)
    db.session.commit()

    def total(**query: str) -> int:
        return get(client, coordinator, **query)["counts"]["total"]

    assert total() == 3
    assert total(created_after=(now - timedelta(days=6)).isoformat()) == 2
    assert total(created_before=(now - timedelta(days=6)).isoformat()) == 1
    # created_after is inclusive, created_before exclusive.
    assert (
        total(
            created_after=(now - timedelta(days=5)).isoformat(),
            created_before=(now - timedelta(days=1)).isoformat(),
        )
        == 1
    )
    # A datetime without an offset is read as UTC.
    naive = (now - timedelta(days=6)).replace(tzinfo=None).isoformat()
    assert total(created_after=naive) == 2
    assert get(client, coordinator, created_before=naive)["counts"]["by_status"]["received"] == 1


def test_bounds_out_of_order_or_malformed_are_422(client, app_context, coordinator):
    now = utcnow()
    response = client.get(
        URL,
        query_string={
            "created_after": now.isoformat(),
            "created_before": (now - timedelta(days=1)).isoformat(),
        },
        headers=coordinator.headers,
    )
    assert response.status_code == 422
    assert "created_before" in response.get_json()["error"]["fields"]
    response = client.get(
        URL, query_string={"created_after": "yesterday"}, headers=coordinator.headers
    )
    assert response.status_code == 422
    assert "created_after" in response.get_json()["error"]["fields"]


def test_median_to_acknowledgement_uses_the_earliest_sent_one(client, app_context, coordinator):
    durations = (60, 120, 600)
    requests = [make_request(route=True, age=timedelta(hours=1)) for _ in durations]
    for request, seconds in zip(requests, durations, strict=True):
        acknowledged(request, timedelta(seconds=seconds))
    # A resend sent later does not move the first request's time.
    resend = notifications.prepare_acknowledgement(requests[0], dedupe_key="resend:1")
    resend.status, resend.sent_at = "sent", requests[0].created_at + timedelta(hours=5)
    # A routed request whose acknowledgement is still pending has no time yet.
    make_request(route=True)
    db.session.commit()

    assert get(client, coordinator)["median_seconds"]["to_acknowledgement"] == pytest.approx(120)


def test_median_to_in_review_uses_the_earliest_transition(client, app_context, coordinator):
    first = make_request(age=timedelta(days=1))
    second = make_request(age=timedelta(days=1))
    make_request(age=timedelta(days=1))  # never reviewed: left out
    reviewed(first, timedelta(seconds=100))
    reviewed(second, timedelta(seconds=300))
    reviewed(second, timedelta(seconds=5000))  # back to in_review later: not the first time
    # An even number of requests: the median is the mean of the middle two.
    assert get(client, coordinator)["median_seconds"]["to_in_review"] == pytest.approx(200)


def test_medians_leave_out_spam_and_requests_outside_the_bounds(client, app_context, coordinator):
    inside = make_request(age=timedelta(days=1))
    outside = make_request(age=timedelta(days=30))
    reviewed(inside, timedelta(seconds=50))
    reviewed(outside, timedelta(seconds=9000))
    spam = submit(destination="BE", condition="stroke", website="x")
    spam.created_at = utcnow() - timedelta(days=1)
    db.session.add(Event(quote_request_id=spam.id, type="in_review", actor="x", at=utcnow()))
    db.session.commit()

    since = (utcnow() - timedelta(days=7)).isoformat()
    medians = get(client, coordinator, created_after=since)["median_seconds"]
    assert medians["to_in_review"] == pytest.approx(50)


def test_breached_counts_requests_without_a_first_response_past_the_sla(
    client, app_context, coordinator, app
):
    hours = app.config["SLA_FIRST_RESPONSE_HOURS"]
    late = timedelta(hours=hours, minutes=5)
    make_request(age=late)  # received
    make_request(age=late, route=True)  # routed
    make_request(age=late, status="unroutable")
    make_request(age=late, status="in_review")  # responded
    make_request(age=late, status="closed")
    make_request(age=timedelta(hours=hours - 1))  # still within the SLA

    body = get(client, coordinator)
    assert body["sla"] == {"first_response_hours": hours, "breached": 3}


def test_without_a_token_it_is_401(client, app):
    response = client.get(URL)
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"
    assert client.get(URL, headers={"Authorization": "Bearer nope"}).status_code == 401


def test_the_endpoint_is_documented_with_its_security(client):
    operation = client.get("/openapi.json").get_json()["paths"]["/api/v1/statistics"]["get"]
    assert operation["security"] == [{"coordinatorToken": []}]
    assert {p["name"] for p in operation["parameters"]} == {"created_after", "created_before"}


def test_medians_on_sqlite_are_computed_too(sqlite_app: Flask):
    """The embedded default has no percentile function; the service takes the median itself."""
    with sqlite_app.app_context():
        requests = [make_request(age=timedelta(hours=2)) for _ in range(3)]
        for request, seconds in zip(requests, (30, 90, 3000), strict=True):
            reviewed(request, timedelta(seconds=seconds))
        stats = request_statistics(created_after=datetime(2000, 1, 1, tzinfo=UTC))
        assert stats["median_seconds"] == {
            "to_acknowledgement": None,
            "to_in_review": 90.0,
            "to_first_quote": None,
        }
        assert stats["counts"]["by_status"]["in_review"] == 3
        db.session.remove()
