"""GET /api/v1/statistics reports: a daily series, each clinic, each coordinator, the outcomes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from quote_service.extensions import db
from quote_service.models import ClinicQuote, Event, Invitation, QuoteRequest, utcnow
from quote_service.services import clinic_quotes
from tests.test_statistics import acknowledged, get, make_request, reviewed


def day(moment: datetime) -> str:
    return moment.astimezone(UTC).date().isoformat()


def test_the_daily_series_counts_each_day_of_the_range_with_zeros(client, app_context, coordinator):
    today = make_request(route=True)
    acknowledged(today, timedelta(seconds=30))
    two_days_ago = make_request(age=timedelta(days=2), route=True)
    acknowledged(two_days_ago, timedelta(seconds=90))
    make_request(age=timedelta(days=2), status="spam")
    body = get(client, coordinator)
    assert len(body["daily"]) == 30
    assert body["range"]["last_day"] == day(utcnow())
    by_day = {row["day"]: row for row in body["daily"]}
    older = by_day[day(two_days_ago.created_at)]
    assert older["by_status"]["routed"] == 1 and older["by_status"]["spam"] == 0
    assert older["median_seconds_to_acknowledgement"] == 90
    newest = by_day[day(today.created_at)]
    assert newest["median_seconds_to_acknowledgement"] == 30
    sent_days = {row["day"]: row["acknowledgements_sent"] for row in body["daily"]}
    assert sent_days[day(today.created_at + timedelta(seconds=30))] >= 1
    assert sum(sent_days.values()) == 2
    quiet = by_day[day(utcnow() - timedelta(days=10))]
    assert quiet["acknowledgements_sent"] == 0 and sum(quiet["by_status"].values()) == 0
    assert quiet["median_seconds_to_acknowledgement"] is None


def test_a_range_sets_the_days_and_a_long_one_keeps_its_last_366(client, coordinator):
    body = get(
        client,
        coordinator,
        created_after="2026-03-01T00:00:00Z",
        created_before="2026-03-08T00:00:00Z",
    )
    assert [row["day"] for row in body["daily"]][0] == "2026-03-01"
    assert len(body["daily"]) == 7 and body["range"]["last_day"] == "2026-03-07"
    long = get(
        client,
        coordinator,
        created_after="2020-01-01T00:00:00Z",
        created_before="2026-01-01T00:00:00Z",
    )
    assert len(long["daily"]) == 366
    assert long["range"] == {"first_day": "2024-12-31", "last_day": "2025-12-31"}


def test_each_clinic_and_each_coordinator_and_the_outcomes(
    client, app_context, coordinator, portugal
):
    portugal("alfa", weight=9)
    booked = make_request(destination="PT", route=True)
    lost = make_request(destination="PT", route=True)
    [invitation] = db.session.execute(
        db.select(Invitation).where(Invitation.quote_request_id == booked.id)
    ).scalars()
    invitation.answered_at = invitation.sent_at + timedelta(hours=6)
    quote = ClinicQuote(
        invitation_id=invitation.id,
        quote_request_id=booked.id,
        provider_id=invitation.provider_id,
        status="sent",
        price_min=9000,
        currency="EUR",
        includes=[],
        excludes=[],
        valid_until=(utcnow() + timedelta(days=30)).date(),
        evidence="experimental",
        submitted_at=utcnow(),
    )
    db.session.add(quote)
    db.session.commit()
    clinic_quotes.record_interest(db.session.get_one(QuoteRequest, booked.id), quote.id)
    for request, outcome in ((booked, "booked"), (lost, "no-response")):
        reviewed(request, timedelta(minutes=40 if outcome == "booked" else 20))
        request = db.session.get_one(QuoteRequest, request.id)
        request.status, request.outcome = "closed", outcome
        request.assignee_id = coordinator.id
        db.session.add(
            Event(
                quote_request_id=request.id,
                type="closed",
                actor=f"user:{coordinator.email}",
                at=utcnow(),
            )
        )
    db.session.commit()

    body = get(client, coordinator)
    [clinic] = body["by_clinic"]
    assert clinic["provider"]["slug"] == "alfa"
    assert clinic["invited"] == 2 and clinic["quoted"] == 1 and clinic["booked"] == 1
    assert clinic["median_response_hours"] == 6
    [person] = body["by_coordinator"]
    assert person["user"]["email"] == coordinator.email
    assert person["assigned"] == 2 and person["closed"] == 2
    assert person["median_seconds_to_review"] == pytest.approx(30 * 60)
    outcomes = body["outcomes"]
    assert outcomes["closed"] == 2
    assert outcomes["by_outcome"]["booked"] == {"count": 1, "rate": 0.5}
    assert outcomes["by_outcome"]["no-response"] == {"count": 1, "rate": 0.5}
    assert outcomes["by_outcome"]["other"] == {"count": 0, "rate": 0.0}


def test_no_closed_request_has_no_rate(client, coordinator):
    outcomes = get(client, coordinator)["outcomes"]
    assert outcomes["closed"] == 0
    assert outcomes["by_outcome"]["booked"] == {"count": 0, "rate": None}
