"""Routing: capacity, language, weight, unroutable, and a second run changing nothing."""

from __future__ import annotations

from collections import Counter

from quote_service.extensions import db
from quote_service.models import Event, Notification, QuoteRequest, RoutingDecision
from quote_service.services import pipeline
from tests.routing_fixtures import received_row, submit


def route(**overrides) -> QuoteRequest:
    request = submit(**overrides)
    assert pipeline.process_received(received_row(request).id) in ("routed", "unroutable")
    db.session.expire_all()
    return db.session.get_one(QuoteRequest, request.id)


def decision_of(request: QuoteRequest) -> RoutingDecision:
    return db.session.execute(
        db.select(RoutingDecision).where(RoutingDecision.quote_request_id == request.id)
    ).scalar_one()


def test_a_provider_at_daily_capacity_is_passed_over(portugal):
    small = portugal("small", capacity=1, weight=10)
    large = portugal("large", capacity=5, weight=1)

    first = route()
    second = route()

    assert first.provider_id == small.id
    assert second.provider_id == large.id
    candidates = {c["slug"]: c for c in decision_of(second).candidates}
    assert candidates["small"]["eligible"] is False
    assert "at daily capacity (1/1)" in candidates["small"]["reasons"]
    assert candidates["large"]["chosen"] is True


def test_a_provider_speaking_the_patients_language_is_preferred(portugal):
    portugal("english", languages=("en",), weight=5)
    dutch = portugal("dutch", languages=("nl", "en"), weight=1)

    request = route(preferred_language="nl")

    assert request.provider_id == dutch.id
    candidates = {c["slug"]: c for c in decision_of(request).candidates}
    assert candidates["english"]["eligible"] is True
    assert "does not speak nl; others do" in candidates["english"]["reasons"]
    assert candidates["dutch"]["speaks_language"] is True


def test_with_no_speaker_of_the_language_any_eligible_provider_is_chosen(portugal):
    english = portugal("english", languages=("en",))
    request = route(preferred_language="de")
    assert request.status == "routed"
    assert request.provider_id == english.id


def test_load_is_shared_by_weight(portugal):
    heavy = portugal("heavy", weight=3, capacity=100)
    light = portugal("light", weight=1, capacity=100)

    chosen = Counter(route().provider_id for _ in range(8))

    assert chosen == {heavy.id: 6, light.id: 2}


def test_inactive_and_non_treating_providers_are_not_chosen(portugal):
    portugal("closed", active=False, weight=9)
    portugal("diabetes-only", conditions=("diabetes-type-2",), weight=9)
    open_ = portugal("open", weight=1)

    request = route()

    assert request.provider_id == open_.id
    candidates = {c["slug"]: c for c in decision_of(request).candidates}
    assert candidates["closed"]["reasons"] == ["inactive"]
    assert candidates["diabetes-only"]["reasons"] == ["does not treat stroke"]


def test_no_candidate_makes_the_request_unroutable_with_one_alert(portugal):
    portugal("closed", active=False)
    portugal("full", capacity=0)

    request = route()

    assert request.status == "unroutable"
    assert request.provider_id is None
    decision = decision_of(request)
    assert decision.outcome == "unroutable"
    assert {c["slug"] for c in decision.candidates} == {"closed", "full"}
    events = [e.type for e in request.events]
    assert events == ["received", "unroutable"]
    notifications = db.session.execute(
        db.select(Notification.kind, Notification.recipient).where(
            Notification.quote_request_id == request.id
        )
    ).all()
    assert sorted(notifications) == [
        ("acknowledgement", request.email),
        ("unroutable_alert", "coordinators@quote-service.example"),
    ]


def test_routing_twice_changes_nothing(portugal):
    portugal("only")
    request = submit()
    row_id = received_row(request).id

    assert pipeline.process_received(row_id) == "routed"
    assert pipeline.process_received(row_id) == "done-already"

    assert db.session.execute(db.select(db.func.count(RoutingDecision.id))).scalar() == 1
    assert db.session.execute(db.select(db.func.count(Notification.id))).scalar() == 2
    routed_events = db.select(db.func.count(Event.id)).where(Event.type == "routed")
    assert db.session.execute(routed_events).scalar() == 1


def test_a_request_that_left_received_is_not_routed_again(portugal):
    portugal("only")
    request = submit()
    row_id = received_row(request).id
    db.session.get_one(QuoteRequest, request.id).status = "withdrawn"
    db.session.commit()

    assert pipeline.process_received(row_id) == "skipped"
    assert db.session.execute(db.select(RoutingDecision)).first() is None
    assert db.session.execute(db.select(Notification)).first() is None


def test_routing_writes_an_event_with_the_provider(portugal):
    provider = portugal("only")
    request = route()
    # The routing event, then one invitation per invited clinic.
    event = next(e for e in request.events if e.type == "routed")
    assert (event.type, event.actor) == ("routed", "system")
    assert event.data == {"provider_id": provider.id}
    assert provider.name in event.note
