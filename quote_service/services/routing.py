"""Routing: choosing the clinic for a request, and recording why.

A provider is eligible when it is active, treats the condition and is under
its daily capacity (requests routed to it since midnight UTC). Among eligible
providers, those speaking the patient's language are preferred; among those,
load is shared by weight (weighted least-loaded: the lowest (load + 1) /
weight wins, so over a day each gets a share proportional to its weight).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, time

from sqlalchemy.orm import selectinload

from quote_service.extensions import db
from quote_service.models import (
    Actor,
    Provider,
    QuoteRequest,
    RequestStatus,
    RoutingDecision,
    utcnow,
    vocabulary,
)
from quote_service.services import timeline


@dataclass
class Candidate:
    provider_id: int
    slug: str
    name: str
    load: int
    capacity: int
    weight: int
    active: bool
    treats_condition: bool
    speaks_language: bool
    eligible: bool = False
    chosen: bool = False
    score: float | None = None
    rank: int | None = None
    reasons: list[str] = field(default_factory=list)


def evaluate(
    providers: list[Provider], condition: str, language: str, loads: dict[int, int]
) -> list[Candidate]:
    """Judge every provider at the destination and mark the one chosen, if any."""
    candidates = []
    for provider in providers:
        candidate = Candidate(
            provider_id=provider.id,
            slug=provider.slug,
            name=provider.name,
            load=loads.get(provider.id, 0),
            capacity=provider.daily_capacity,
            weight=provider.weight,
            active=provider.active,
            treats_condition=condition in {c.slug for c in provider.conditions},
            speaks_language=language in provider.languages,
        )
        if not candidate.active:
            candidate.reasons.append("inactive")
        if not candidate.treats_condition:
            candidate.reasons.append(f"does not treat {condition}")
        if candidate.load >= candidate.capacity:
            candidate.reasons.append(f"at daily capacity ({candidate.load}/{candidate.capacity})")
        candidate.eligible = not candidate.reasons
        candidates.append(candidate)

    eligible = [c for c in candidates if c.eligible]
    speakers = [c for c in eligible if c.speaks_language]
    pool = speakers or eligible
    for candidate in eligible:
        candidate.score = (candidate.load + 1) / max(candidate.weight, 1)
        if candidate not in pool:
            candidate.reasons.append(f"does not speak {language}; others do")

    # Every eligible clinic gets a rank: those speaking the patient's language
    # first, each group by load per weight. Rank 1 is the request's provider;
    # the first QUOTE_FANOUT are invited to quote, the next ones are fallbacks.
    def order(c: Candidate) -> tuple[float, int, str]:
        return (c.score or 0.0, -c.weight, c.slug)

    ranked = sorted(pool, key=order) + sorted((c for c in eligible if c not in pool), key=order)
    for position, candidate in enumerate(ranked, start=1):
        candidate.rank = position
    if ranked:
        chosen = ranked[0]
        chosen.chosen = True
        chosen.reasons.append(
            f"chosen: lowest load per weight ({chosen.load} today, weight {chosen.weight})"
            + (f", speaks {language}" if chosen.speaks_language else "")
        )
    return candidates


def loads_today(provider_ids: list[int], now: datetime) -> dict[int, int]:
    """Requests routed to each provider since midnight UTC."""
    if not provider_ids:
        return {}
    midnight = datetime.combine(now.date(), time.min, tzinfo=UTC)
    rows = db.session.execute(
        db.select(RoutingDecision.provider_id, db.func.count(RoutingDecision.id))
        .where(
            RoutingDecision.provider_id.in_(provider_ids),
            RoutingDecision.outcome == RequestStatus.ROUTED,
            RoutingDecision.decided_at >= midnight,
        )
        .group_by(RoutingDecision.provider_id)
    ).all()
    return {provider_id: count for provider_id, count in rows}


def rank_candidates(request: QuoteRequest) -> list[Candidate]:
    """Every provider at the destination judged now, eligible ones ranked (no decision kept)."""
    providers = list(
        db.session.execute(
            db.select(Provider)
            .where(Provider.destination_code == request.destination_code)
            .order_by(Provider.id)
            .options(selectinload(Provider.conditions))
        ).scalars()
    )
    loads = loads_today([p.id for p in providers], utcnow())
    return evaluate(providers, request.condition_slug, request.preferred_language, loads)


def decide(
    request: QuoteRequest,
    actor: str = Actor.SYSTEM,
    note: str | None = None,
    *,
    choose: int | None = None,
    event_type: str | None = None,
    set_status: bool = True,
) -> RoutingDecision:
    """Route one request now and record the decision; the caller commits.

    `choose` names a provider a coordinator picked: every candidate is still
    evaluated and recorded, and the pick is marked as chosen by that person.
    The destination's providers are locked (PostgreSQL) so that two workers
    routing at once cannot both take a clinic's last slot of the day.
    """
    now = utcnow()
    providers = list(
        db.session.execute(
            db.select(Provider)
            .where(Provider.destination_code == request.destination_code)
            .order_by(Provider.id)
            # One query for every provider's conditions, not one per provider.
            .options(selectinload(Provider.conditions))
            .with_for_update(of=Provider)
        ).scalars()
    )
    loads = loads_today([p.id for p in providers], now)
    candidates = evaluate(providers, request.condition_slug, request.preferred_language, loads)
    if choose is not None:
        for candidate in candidates:
            candidate.chosen = candidate.provider_id == choose
            # The automatic pick's reason would contradict `chosen: false`.
            candidate.reasons = [r for r in candidate.reasons if not r.startswith("chosen:")]
            if candidate.chosen:
                candidate.reasons.append(f"chosen by {actor}")
    chosen = next((c for c in candidates if c.chosen), None)
    decision = RoutingDecision(
        quote_request_id=request.id,
        outcome=RequestStatus.ROUTED if chosen else RequestStatus.UNROUTABLE,
        provider_id=chosen.provider_id if chosen else None,
        candidates=[asdict(c) for c in candidates],
        actor=actor,
        note=note,
        decided_at=now,
    )
    db.session.add(decision)
    if set_status:
        request.status = decision.outcome
    request.provider_id = decision.provider_id
    request.updated_at = now
    summary = f"Routed to {chosen.name}." if chosen else "No eligible provider."
    timeline.record(
        request,
        event_type or vocabulary.status_event(decision.outcome),
        actor,
        f"{summary} {note}" if note else summary,
        {"provider_id": decision.provider_id},
        at=now,
    )
    db.session.flush()
    return decision
