"""Invitations: the clinics asked to quote for a request, their deadlines and the fallback.

Routing ranks every eligible clinic; the first `QUOTE_FANOUT` are invited,
each by an email carrying its own link. An invitation is answered (a quote or
a decline), or it expires after `CLINIC_RESPONSE_HOURS` (one reminder at half
time). Whenever a clinic stops working on a request (declined, expired), the
next ranked eligible clinic not yet invited is invited, so a request keeps
`QUOTE_FANOUT` clinics working while any are left; when none is left and no
quote came, the coordinators are alerted once. Every email goes through the
outbox like the others, so each is sent once and survives restarts.
"""

from __future__ import annotations

import logging
import statistics
from dataclasses import asdict
from datetime import datetime, timedelta

from flask import current_app

from quote_service.crypto import LINK_TOKEN_PATTERN, new_link_token, stored_link_token, token_hash
from quote_service.errors import Conflict, Gone, NotFound
from quote_service.extensions import db
from quote_service.models import (
    Actor,
    ClinicQuote,
    EventType,
    Invitation,
    InvitationStatus,
    Notification,
    Provider,
    QuoteRequest,
    RoutingDecision,
    utcnow,
    vocabulary,
)
from quote_service.services import masking, notifications, routing, timeline

log = logging.getLogger(__name__)

TOKEN_PURPOSE = "clinic-invitation"
TOKEN_PATTERN = LINK_TOKEN_PATTERN


def link_token(invitation: Invitation) -> str:
    """The token of an invitation's link, re-derived (it is never stored)."""
    return stored_link_token(TOKEN_PURPOSE, invitation.token_salt, invitation.token_hash)


def link(invitation: Invitation) -> str:
    base = current_app.config["PUBLIC_BASE_URL"]
    return f"{base}/clinic/invitations/{link_token(invitation)}"


def response_window() -> timedelta:
    return timedelta(hours=current_app.config["CLINIC_RESPONSE_HOURS"])


def _event(request: QuoteRequest, type_: str, note: str | None, **data: object) -> None:
    timeline.record(request.id, type_, Actor.SYSTEM, note, data)


def invite(request: QuoteRequest, provider: Provider, rank: int) -> Invitation:
    """Invite one clinic: the invitation row and its email, in the caller's transaction."""
    return invite_all(request, [(provider, rank)])[0]


def invite_all(request: QuoteRequest, ranked: list[tuple[Provider, int]]) -> list[Invitation]:
    """Invite clinics (with their ranks): their rows in one flush, then each one's email."""
    invitations = _new_invitations(request, ranked)
    for invitation in invitations:
        _announce_new(request, invitation)
    return invitations


def _new_invitations(request: QuoteRequest, ranked: list[tuple[Provider, int]]) -> list[Invitation]:
    """Open invitations of the clinics, flushed together (their ids name them in their emails)."""
    invitations = []
    for provider, rank in ranked:
        invitation = Invitation(quote_request_id=request.id, provider_id=provider.id, rank=rank)
        invitation.provider = provider
        _reset(invitation)
        db.session.add(invitation)
        invitations.append(invitation)
    db.session.flush()
    return invitations


def _announce_new(request: QuoteRequest, invitation: Invitation) -> None:
    _announce(request, invitation, f"{invitation.provider.name} invited to quote.")


def _open(request: QuoteRequest, invitation: Invitation, note: str) -> None:
    """Give an invitation a fresh link and deadlines, and queue its email."""
    _reset(invitation)
    db.session.flush()
    _announce(request, invitation, note)


def _reset(invitation: Invitation) -> None:
    """A fresh link and deadlines, open from now."""
    now = utcnow()
    invitation.token_salt, invitation.token_hash = new_link_token(TOKEN_PURPOSE)
    invitation.status = InvitationStatus.OPEN
    invitation.sent_at = now
    invitation.respond_by = now + response_window()
    invitation.remind_at = now + response_window() / 2
    invitation.reminded_at = invitation.answered_at = invitation.closed_at = None


def _announce(request: QuoteRequest, invitation: Invitation, note: str) -> None:
    """Queue the email of a flushed, open invitation, and say so on the timeline."""
    notifications.prepare_provider_email(request, invitation.provider, invitation, link(invitation))
    _event(
        request,
        EventType.INVITATION_SENT,
        note,
        invitation_id=invitation.id,
        provider_id=invitation.provider_id,
    )


def invitations_of(request_id: int) -> list[Invitation]:
    return list(
        db.session.execute(
            db.select(Invitation)
            .where(Invitation.quote_request_id == request_id)
            .order_by(Invitation.sent_at, Invitation.id)
        ).scalars()
    )


def next_to_invite(request: QuoteRequest, candidates: list[dict]) -> list[tuple[Provider, int]]:
    """The best-ranked eligible clinics not invited yet, up to QUOTE_FANOUT working."""
    existing = invitations_of(request.id)
    invited = {i.provider_id for i in existing}
    room = current_app.config["QUOTE_FANOUT"] - sum(
        1 for i in existing if i.status == InvitationStatus.OPEN
    )
    ranked = sorted((c for c in candidates if c.get("rank")), key=lambda c: c["rank"])
    chosen = [c for c in ranked if c["provider_id"] not in invited][: max(room, 0)]
    if not chosen:
        return []
    # One SELECT for all: the routing that ranked them loaded them, but the
    # session keeps no strong hold on them, so each `get` would read one again.
    loaded = db.session.execute(
        db.select(Provider).where(Provider.id.in_([c["provider_id"] for c in chosen]))
    ).scalars()
    by_id = {provider.id: provider for provider in loaded}
    return [(by_id[c["provider_id"]], c["rank"]) for c in chosen]


def invite_ranked(request: QuoteRequest, candidates: list[dict]) -> list[Invitation]:
    return invite_all(request, next_to_invite(request, candidates))


def after_routing(request: QuoteRequest, decision: RoutingDecision) -> list[Notification]:
    """The emails a first routing calls for: the acknowledgement, then the clinics' invitations."""
    if decision.provider_id is None:
        return [
            notifications.prepare_acknowledgement(request),
            notifications.prepare_unroutable_alert(request, decision),
        ]
    chosen = next_to_invite(request, decision.candidates)
    with notifications.recorded_together():
        # The invitations' rows first: their flush is then the only one before
        # the emails', which go out in the order recorded, the acknowledgement first.
        invitations = _new_invitations(request, chosen)
        acknowledgement = notifications.prepare_acknowledgement(
            request, clinics=[provider for provider, _ in chosen]
        )
        for invitation in invitations:
            _announce_new(request, invitation)
    return [acknowledgement]


def reinvite(request: QuoteRequest, provider: Provider) -> Invitation:
    """A coordinator routed the request to this clinic: invite it (again, if it had ended)."""
    for invitation in invitations_of(request.id):
        if invitation.provider_id == provider.id:
            if invitation.status not in vocabulary.INVITATION_ANSWERABLE:
                # One invitation per clinic and request: a closed one is reopened
                # with a new link and deadline (the old link stays dead).
                _open(request, invitation, f"{provider.name} invited to quote again.")
            return invitation
    return invite(request, provider, rank=1)


def top_up(request: QuoteRequest) -> list[Invitation]:
    """After a clinic stopped working on a request: invite the next ones, or alert once."""
    if request.status not in vocabulary.INVITING:
        return []
    new = invite_ranked(request, [asdict(c) for c in routing.rank_candidates(request)])
    if new:
        return new
    existing = invitations_of(request.id)
    if any(i.status == InvitationStatus.OPEN for i in existing):
        return []
    quoted = db.session.execute(
        db.select(db.func.count(ClinicQuote.id)).where(ClinicQuote.quote_request_id == request.id)
    ).scalar()
    if not quoted:
        notifications.prepare_no_quotes_alert(request, existing)
    return []


def find(token: str, *, lock: bool = False) -> Invitation:
    """The invitation of a link's token; 404 for anything unknown or altered."""
    if not TOKEN_PATTERN.fullmatch(token):
        raise NotFound("There is no invitation at this address.")
    statement = db.select(Invitation).where(Invitation.token_hash == token_hash(token))
    if lock:
        statement = statement.with_for_update()
    invitation = db.session.execute(statement).scalar_one_or_none()
    if invitation is None:
        raise NotFound("There is no invitation at this address.")
    return invitation


def reference_of(invitation: Invitation) -> str:
    return db.session.get_one(QuoteRequest, invitation.quote_request_id).reference


def clinic_view(invitation: Invitation) -> dict[str, object]:
    """What the invited clinic may read: the minimum to quote, no contact details."""
    request = db.session.get_one(QuoteRequest, invitation.quote_request_id)
    return {
        "reference": request.reference,
        "status": invitation.status,
        "respond_by": invitation.respond_by,
        "condition": request.condition_slug,
        "treatment": request.treatment_slug,
        "destination": request.destination_code,
        "preferred_language": request.preferred_language,
        "patient_age": request.patient_age,
        "travel_from": request.travel_from,
        "travel_to": request.travel_to,
        "message": masking.for_clinic(
            request.message, request.country_of_residence, request.destination_code
        ),
    }


def labels(invitation: Invitation) -> dict[str, str]:
    """The request's condition, treatment and destination named in the clinic's language."""
    request = db.session.get_one(QuoteRequest, invitation.quote_request_id)
    language = invitation.provider.languages[0] if invitation.provider.languages else "en"
    return notifications.labels(request, language)


def check_open(invitation: Invitation) -> None:
    """An expired or withdrawn invitation is over: its link answers 410."""
    if invitation.status in (InvitationStatus.EXPIRED, InvitationStatus.WITHDRAWN):
        raise InvitationClosed(
            f"This invitation is {invitation.status}; it no longer takes answers.",
            extra={"status": invitation.status},
        )


def check_answerable(invitation: Invitation) -> None:
    check_open(invitation)
    if invitation.status == InvitationStatus.DECLINED:
        raise InvitationAnswered("This invitation was declined; it takes no quote.")


class InvitationClosed(Gone):
    code = "invitation_closed"


class InvitationAnswered(Conflict):
    code = "invitation_answered"


def decline(token: str, reason: str, note: str | None) -> Invitation:
    invitation = find(token, lock=True)
    check_answerable(invitation)
    if invitation.status == InvitationStatus.QUOTED:
        raise InvitationAnswered("A quote was submitted on this invitation; it cannot be declined.")
    request = db.session.get_one(QuoteRequest, invitation.quote_request_id)
    now = utcnow()
    invitation.status = InvitationStatus.DECLINED
    invitation.answered_at = now
    invitation.decline_reason = reason
    invitation.decline_note = note
    _event(
        request,
        EventType.INVITATION_DECLINED,
        f"{invitation.provider.name} declined ({reason}).",
        invitation_id=invitation.id,
        provider_id=invitation.provider_id,
        reason=reason,
    )
    top_up(request)
    db.session.commit()
    return invitation


def close_for_request(request: QuoteRequest, status: str = InvitationStatus.WITHDRAWN) -> int:
    """The request ended or was taken from these clinics: open invitations close. Caller commits."""
    now = utcnow()
    count = 0
    for invitation in invitations_of(request.id):
        if invitation.status == InvitationStatus.OPEN:
            invitation.status = status
            invitation.closed_at = now
            count += 1
    return count


def withdraw_provider(request: QuoteRequest, provider_id: int) -> Invitation | None:
    """A reroute took the request from this clinic: its open invitation is withdrawn.

    Its emails not sent yet are cancelled; if one reached the clinic, a notice
    (the reference only) tells it it is withdrawn and to delete what it got,
    through the outbox like every email. A clinic that answered keeps its
    invitation (a quote stays a quote); one that declined or expired is out
    already. The caller commits.
    """
    invitation = next((i for i in invitations_of(request.id) if i.provider_id == provider_id), None)
    if invitation is None or invitation.status != InvitationStatus.OPEN:
        return None
    invitation.status = InvitationStatus.WITHDRAWN
    invitation.closed_at = utcnow()
    provider = invitation.provider
    told = notifications.stop_invitation_emails(request, invitation)
    if told:
        notifications.prepare_withdrawal_notice(request, provider)
    _event(
        request,
        EventType.INVITATION_WITHDRAWN,
        f"{provider.name} withdrawn by the reroute"
        + ("; asked to delete what it received." if told else "; nothing had been sent to it."),
        invitation_id=invitation.id,
        provider_id=provider.id,
        notified=told,
    )
    return invitation


def sweep(now: datetime | None = None, batch: int = 200) -> dict[str, int]:
    """Beat: remind at half time, expire at the deadline and invite the next clinic."""
    now = now or utcnow()
    counts = {"reminded": 0, "expired": 0}
    due = list(
        db.session.execute(
            db.select(Invitation)
            .where(Invitation.status == InvitationStatus.OPEN, Invitation.respond_by <= now)
            .order_by(Invitation.respond_by, Invitation.id)
            .limit(batch)
            # Two overlapping sweeps take different invitations.
            .with_for_update(skip_locked=True)
        ).scalars()
    )
    for invitation in due:
        request = db.session.get_one(QuoteRequest, invitation.quote_request_id)
        invitation.status = InvitationStatus.EXPIRED
        invitation.closed_at = now
        _event(
            request,
            EventType.INVITATION_EXPIRED,
            f"{invitation.provider.name} did not answer in time.",
            invitation_id=invitation.id,
            provider_id=invitation.provider_id,
        )
        top_up(request)
        counts["expired"] += 1
    db.session.commit()

    to_remind = list(
        db.session.execute(
            db.select(Invitation)
            .where(
                Invitation.status == InvitationStatus.OPEN,
                Invitation.reminded_at.is_(None),
                Invitation.remind_at <= now,
                Invitation.respond_by > now,
            )
            .order_by(Invitation.remind_at, Invitation.id)
            .limit(batch)
            .with_for_update(skip_locked=True)
        ).scalars()
    )
    for invitation in to_remind:
        request = db.session.get_one(QuoteRequest, invitation.quote_request_id)
        invitation.reminded_at = now
        notifications.prepare_invitation_reminder(request, invitation, link(invitation))
        counts["reminded"] += 1
    db.session.commit()
    return counts


RESPONSE_WINDOW_DAYS = 90


def response_stats(provider_ids: list[int], now: datetime | None = None) -> dict[int, dict]:
    """Per clinic, over the last 90 days: share answered in time, and median hours to answer.

    Only invitations whose outcome is known count: answered, declined or
    expired. One still open within its deadline, or withdrawn because the
    request ended, says nothing about the clinic yet.
    """
    if not provider_ids:
        return {}
    since = (now or utcnow()) - timedelta(days=RESPONSE_WINDOW_DAYS)
    rows = db.session.execute(
        db.select(
            Invitation.provider_id,
            Invitation.sent_at,
            Invitation.respond_by,
            Invitation.answered_at,
        ).where(
            Invitation.provider_id.in_(provider_ids),
            Invitation.sent_at >= since,
            Invitation.status.in_(
                (InvitationStatus.QUOTED, InvitationStatus.DECLINED, InvitationStatus.EXPIRED)
            ),
        )
    ).all()
    per_provider: dict[int, list] = {}
    for row in rows:
        per_provider.setdefault(row.provider_id, []).append(row)
    stats = {}
    for provider_id in provider_ids:
        known = per_provider.get(provider_id, [])
        answered = [r for r in known if r.answered_at is not None]
        in_time = [r for r in answered if r.answered_at <= r.respond_by]
        hours = [(r.answered_at - r.sent_at).total_seconds() / 3600 for r in answered]
        stats[provider_id] = {
            "response_rate": round(len(in_time) / len(known), 3) if known else None,
            "median_response_hours": round(statistics.median(hours), 2) if hours else None,
        }
    return stats
