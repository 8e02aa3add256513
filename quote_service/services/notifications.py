"""Notifications: building each email once, then delivering it at most once per attempt.

Exactly-once in practice: a notification is recorded (with its rendered
bytes and Message-ID) in the same transaction as the decision that calls for
it, under a unique `dedupe_key`. A delivery claims its outbox row first (a
short lease, renewed while the SMTP send runs: see services/outbox.py), so a
duplicate delivery meanwhile leaves it alone. Before sending, its status is
set to `sending` and committed; a later run that finds it `sending` knows the
run that set it died. Once the server has taken the email, the `sent` commit
is retried through a database outage of up to 30 s. One window remains: the
worker dies after the SMTP server accepted the message and before `sent` is
committed. Its lease then runs out (30 s) and the same bytes go out again
with the same Message-ID, which mailbox providers use to fold duplicates. We
accept it: the window is a few milliseconds long, and losing an
acknowledgement would be worse than a duplicate that most mailboxes hide.
"""

from __future__ import annotations

import gettext
import logging
import random
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache, partial
from typing import Any

import pycountry
from babel.dates import format_date
from babel.numbers import format_currency
from flask import current_app
from sqlalchemy import update

from quote_service.addresses import mailbox
from quote_service.crypto import keyring
from quote_service.extensions import db
from quote_service.mail.guard import missing_disclaimers
from quote_service.mail.rendering import body_sha256, build_message, environment, render
from quote_service.mail.sender import SendError, TransientSendError, sender_from_config
from quote_service.models import (
    Actor,
    ClinicQuote,
    Event,
    EventType,
    Invitation,
    Notification,
    NotificationStatus,
    OutboxMessage,
    PrivacyRequest,
    Provider,
    QuoteRequest,
    RoutingDecision,
    User,
    utcnow,
)
from quote_service.models.vocabulary import (
    INVITATION_ANSWERABLE,
    NOTIFICATION_FINAL,
    notification_event,
)
from quote_service.safety.emergency import advice
from quote_service.services import (
    alerts,
    catalog_snapshot,
    masking,
    outbox,
    patient_tokens,
    timeline,
)
from quote_service.services.catalog import (
    DEFAULT_LANGUAGE,
    disclaimers_in_scope,
    quote_item_names,
    translated,
)
from quote_service.services.catalog_snapshot import CurrentDisclaimer
from quote_service.services.statements import Write, execute_together
from quote_service.services.transient import retry_transient

log = logging.getLogger(__name__)
N = NotificationStatus

TEMPLATE_LANGUAGES = ("en", "fr", "nl", "de")
# How long a `sent` that could not be committed is retried: well inside the
# task's time limit, long enough for a database restart or failover.
SENT_RECORD_RETRY_SECONDS = 30.0


def acknowledgement_disclaimers(
    language: str, destination: str, condition: str, context: str | None = None
) -> list[CurrentDisclaimer]:
    """Every disclaimer in scope, in the patient's language.

    `context="quote"` adds the disclaimers only quote emails carry. A
    disclaimer that has no text in that language yet still goes out, in
    English: a missing translation must never drop a required disclaimer.
    """
    chosen = disclaimers_in_scope(language, destination, condition, context)
    if language != DEFAULT_LANGUAGE:
        have = {d.key for d in chosen}
        chosen += [
            d
            for d in disclaimers_in_scope(DEFAULT_LANGUAGE, destination, condition, context)
            if d.key not in have
        ]
    return chosen


@lru_cache(maxsize=64)
def language_label(code: str, in_language: str) -> str:
    """`nl` as "Dutch", "néerlandais", "Nederlands"... via pycountry's translations."""
    language = pycountry.languages.get(alpha_2=code)
    if language is None:
        return code
    translation = gettext.translation(
        "iso639-3", pycountry.LOCALES_DIR, languages=[in_language], fallback=True
    )
    return translation.gettext(language.name)


def _labels(request: QuoteRequest, language: str) -> dict[str, str]:
    catalog = catalog_snapshot.current()
    return {
        "condition_name": translated(catalog.condition_names[request.condition_slug], language),
        "destination_name": translated(
            catalog.destination_names[request.destination_code], language
        ),
        "treatment_name": translated(catalog.treatment_names[request.treatment_slug], language),
        "language_name": language_label(request.preferred_language, language),
    }


def labels(request: QuoteRequest, language: str) -> dict[str, str]:
    """The request's condition, destination, treatment and language named in `language`."""
    return _labels(request, language)


def _template_language(language: str) -> str:
    return language if language in TEMPLATE_LANGUAGES else DEFAULT_LANGUAGE


def _record(
    request: QuoteRequest,
    kind: str,
    dedupe_key: str,
    recipient: str,
    language: str,
    context: dict[str, Any],
    disclaimers: list[CurrentDisclaimer] | None = None,
    past_cap: bool = False,
) -> Notification:
    """Render, check and record one notification, with an outbox row when it may go.

    `past_cap`: an acknowledgement the per-recipient cap does not hold back.
    """
    config = current_app.config
    try:
        rendered = render(
            environment(config["MAIL_TEMPLATES_DIR"] or None), kind, language, context
        )
        message = build_message(
            config["MAIL_FROM"], recipient, rendered, reply_to=config["COORDINATORS_EMAIL"]
        )
        raw = message.as_bytes()
    except Exception as error:
        # An address or template that cannot become a message must not crash the
        # routing that called for it (and have it re-published forever): the email
        # is recorded as failed, visibly, and the rest of the work goes on.
        return _record_unbuildable(request, kind, dedupe_key, recipient, language, error)
    notification = Notification(
        quote_request_id=request.id,
        kind=kind,
        dedupe_key=dedupe_key,
        recipient=recipient,
        language=language,
        subject=rendered.subject,
        message_id=str(message["Message-ID"]),
        body_sha256=body_sha256(raw),
        # UTF-8 only in the headers of a message to an international address.
        mime=raw.decode("utf-8"),
        disclaimers=[
            {"key": d.key, "version": d.version, "language": d.language} for d in disclaimers or []
        ],
        status=N.PENDING,
        created_at=utcnow(),
    )
    required = [d for d in disclaimers or [] if d.required]
    missing = missing_disclaimers(raw, required)
    if missing:
        notification.status = N.BLOCKED
        notification.last_error = "missing required disclaimers: " + ", ".join(missing)
    elif kind == "acknowledgement" and not past_cap and _recipient_capped(recipient):
        notification.status = N.SUPPRESSED
        notification.last_error = "daily cap of acknowledgements to this address reached"
    elif kind in alerts.ALERT_KINDS and alerts.over_cap(kind):
        notification.status = N.GROUPED
    elif outbox.claiming(outbox.TOPIC_SEND):
        # The run queuing it sends it right after its commit (`send_held`):
        # written as the attempt it is about to be, in the INSERT itself.
        _mark_attempt(notification, notification.created_at)
    db.session.add(notification)
    queued = partial(_queued, request, notification, missing)
    together: list[Callable[[], None]] | None = db.session.info.get(_TOGETHER)
    if together is None:
        db.session.flush()  # its id names it in its outbox row or event
        queued()
    else:
        together.append(queued)
    return notification


def _queued(request: QuoteRequest, notification: Notification, missing: list[str]) -> None:
    """What follows a flushed notification: its outbox row, or the event of why it waits."""
    if missing:
        log.error(
            "notification %s of %s blocked: %s", notification.kind, request.reference, missing
        )
        _event(request, notification, N.BLOCKED, notification.last_error)
    elif notification.status == N.SUPPRESSED:
        log.warning("acknowledgement of %s suppressed: recipient cap", request.reference)
        _event(request, notification, N.SUPPRESSED, notification.last_error)
    elif notification.status == N.GROUPED:
        _event(request, notification, N.GROUPED, alerts.GROUPED_NOTE)
    else:
        outbox.enqueue(outbox.TOPIC_SEND, {"notification_id": notification.id})


# The session.info key of a `recorded_together` block: what its emails still need.
_TOGETHER = "notifications_together"


@contextmanager
def recorded_together() -> Iterator[None]:
    """The emails recorded in the block are flushed together at its end, then queued in order.

    For a run that records several at once (a routing: the acknowledgement
    and each clinic's invitation). Each outbox row needs its notification's
    id; one flush for all writes them in one INSERT rather than one each. A
    query in the block still sees them: the session flushes before it reads.
    """
    together: list[Callable[[], None]] = []
    db.session.info[_TOGETHER] = together
    try:
        yield
    finally:
        del db.session.info[_TOGETHER]
    db.session.flush()
    for queued in together:
        queued()


def _record_unbuildable(
    request: QuoteRequest,
    kind: str,
    dedupe_key: str,
    recipient: str,
    language: str,
    error: Exception,
) -> Notification:
    notification = Notification(
        quote_request_id=request.id,
        kind=kind,
        dedupe_key=dedupe_key,
        recipient=recipient,
        language=language,
        subject="",
        message_id="",
        body_sha256="",
        mime=None,
        disclaimers=[],
        status=N.FAILED,
        # Kept encrypted with the notification; the log gets the type only.
        last_error=f"could not build the message: {type(error).__name__}: {error}"[:1000],
        created_at=utcnow(),
    )
    db.session.add(notification)
    db.session.flush()
    log.warning("%s of %s not built: %s", kind, request.reference, type(error).__name__)
    _event(request, notification, N.FAILED, notification.last_error)
    return notification


def _recipient_capped(recipient: str) -> bool:
    """Whether this inbox had its daily share of acknowledgements already.

    The form is public: without a cap anyone could mail-bomb a stranger
    through it, one "acknowledgement" at a time. It counts per inbox
    (`jan+1@` and `jan+2@` are one), not per address.
    """
    since = utcnow() - timedelta(days=1)
    count = db.session.execute(
        db.select(db.func.count(Notification.id)).where(
            Notification.kind == "acknowledgement",
            Notification.recipient_mailbox_hash.in_(keyring().lookup_hashes(mailbox(recipient))),
            Notification.status.not_in((N.BLOCKED, N.SUPPRESSED)),
            Notification.created_at >= since,
        )
    ).scalar()
    return count >= current_app.config["ACKNOWLEDGEMENTS_PER_RECIPIENT_PER_DAY"]


def _event(
    request: QuoteRequest | int | None,
    notification: Notification,
    outcome: str,
    note: str | None,
) -> None:
    """Record on the request's timeline (the request or its id) what became of one of its emails."""
    request_id = request.id if isinstance(request, QuoteRequest) else request
    _event_of(request_id, notification.id, notification.kind, outcome, note)


def _event_of(
    request_id: int | None,
    notification_id: int,
    kind: str,
    outcome: str,
    note: str | None,
    at: datetime | None = None,
) -> None:
    """`_event` for a notification known by its id and kind only."""
    if request_id is None:
        return  # a digest to the coordinators belongs to no request's timeline
    timeline.record(
        request_id,
        notification_event(kind, outcome),
        Actor.SYSTEM,
        note,
        _event_data(notification_id, kind),
        at=at,
    )


def _event_data(notification_id: int, kind: str) -> dict[str, Any]:
    """What an email's event on the timeline says of it: which one, no content."""
    return {"notification_id": notification_id, "kind": kind}


# How a message groups its disclaimers, in this order: what concerns the
# patient's condition first (it holds the urgent advice, such as what to do
# during a stroke), then quotes, the destination, and what holds for every request.
DISCLAIMER_SECTIONS = ("condition", "quote", "destination", "general")
# The invitations whose clinics are still working on a request.


def disclaimer_views(disclaimers: list[CurrentDisclaimer]) -> list[dict[str, str]]:
    """The disclaimers as a message shows them: grouped by section, each text verbatim."""

    def section(d: CurrentDisclaimer) -> str:
        if d.condition_slug:
            return "condition"
        if d.context:
            return "quote"
        return "destination" if d.destination_code else "general"

    views = [{"key": d.key, "text": d.text, "section": section(d)} for d in disclaimers]
    return sorted(views, key=lambda v: DISCLAIMER_SECTIONS.index(v["section"]))


def who_we_are() -> dict[str, Any]:
    """Who the patient deals with, and how to reach them: the end of every patient email."""
    config = current_app.config
    return {
        "organisation_name": config["ORGANISATION_NAME"],
        "organisation_address": config["ORGANISATION_ADDRESS"],
        "contact_email": config["CONTACT_EMAIL"],
        "privacy_policy_url": config["PRIVACY_POLICY_URL"],
        # Every email's Reply-To is COORDINATORS_EMAIL (see _record).
        "replies_reach_coordinators": bool(config["COORDINATORS_EMAIL"]),
    }


def working_clinics(request: QuoteRequest) -> list[Provider]:
    """The clinics invited to quote that have not declined, expired or been withdrawn."""
    return list(
        db.session.execute(
            db.select(Provider)
            .join(Invitation, Invitation.provider_id == Provider.id)
            .where(
                Invitation.quote_request_id == request.id,
                Invitation.status.in_(INVITATION_ANSWERABLE),
            )
            .order_by(Invitation.rank, Invitation.id)
        ).scalars()
    )


def prepare_acknowledgement(
    request: QuoteRequest,
    dedupe_key: str | None = None,
    clinics: list[Provider] | None = None,
    resend: bool = False,
    past_cap: bool = False,
) -> Notification:
    """The patient's acknowledgement, with every disclaimer in scope.

    It names the clinics the request went to: `clinics` when routing has just
    chosen them (their invitations come after), else those still working on
    it. None: a coordinator is looking for one. A resend says it is a copy.
    `past_cap`: not held back by the per-recipient cap (a corrected address).
    """
    language = _template_language(request.preferred_language)
    disclaimers = acknowledgement_disclaimers(
        language, request.destination_code, request.condition_slug
    )
    if clinics is None:
        clinics = working_clinics(request)
    clinic_hours = current_app.config["CLINIC_RESPONSE_HOURS"]
    context = {
        "reference": request.reference,
        "full_name": request.full_name,
        "response_hours": current_app.config["SLA_FIRST_RESPONSE_HOURS"],
        "clinic_hours": f"{clinic_hours:g}",
        "clinic_hours_value": clinic_hours,
        "clinics": [{"name": c.name, "city": c.city} for c in clinics],
        # Kept for deployments' template overrides (MAIL_TEMPLATES_DIR) written before `clinics`.
        "routed": bool(clinics),
        "resend": resend,
        "disclaimers": disclaimer_views(disclaimers),
        # Re-derived here, in the worker, from the request's row: never a task argument.
        "patient_link": patient_tokens.link(request),
        **_urgent_context(request, language),
        **_labels(request, language),
        **who_we_are(),
    }
    return _record(
        request,
        "acknowledgement",
        dedupe_key or f"acknowledgement:{request.id}",
        request.email,
        language,
        context,
        disclaimers,
        past_cap=past_cap,
    )


def email_corrected_since_acknowledged(request: QuoteRequest) -> bool:
    """Whether a coordinator corrected the email after the last acknowledgement was made.

    The cap guards strangers' inboxes against the public form; an address a
    coordinator corrected is the patient's, and may get one acknowledgement
    past it. The next one made is after the correction, so it is once.
    """
    corrections = db.session.execute(
        db.select(Event.at, Event.data).where(
            Event.quote_request_id == request.id, Event.type == EventType.CORRECTED
        )
    ).all()
    corrected = [at for at, data in corrections if "email" in (data or {}).get("fields", ())]
    if not corrected:
        return False
    acknowledged = db.session.execute(
        db.select(db.func.max(Notification.created_at)).where(
            Notification.quote_request_id == request.id, Notification.kind == "acknowledgement"
        )
    ).scalar()
    return acknowledged is None or max(corrected) > acknowledged


def _urgent_context(request: QuoteRequest, language: str) -> dict[str, Any]:
    """The emergency advice an urgent request's acknowledgement opens with."""
    if not request.urgent:
        return {"urgent": False, "urgent_advice": None, "emergency_number": None}
    text, number = advice(language, request.country_of_residence)
    return {"urgent": True, "urgent_advice": text, "emergency_number": number}


def prepare_urgent_alert(request: QuoteRequest) -> Notification:
    """Tell the coordinators at once that a request may describe an emergency; once each.

    Its subject and body carry no health text: the matched signs are in the
    request's detail, behind a coordinator's token.
    """
    _, number = advice("en", request.country_of_residence)
    context = {
        "reference": request.reference,
        "country": request.country_of_residence,
        "language_name": language_label(request.preferred_language, "en"),
        "emergency_number": number,
        "received_at": request.created_at.strftime("%Y-%m-%d %H:%M UTC"),
    }
    return _record(
        request,
        "urgent_alert",
        f"urgent_alert:{request.id}",
        current_app.config["COORDINATORS_EMAIL"],
        "en",
        context,
    )


def deadline_text(moment: datetime) -> str:
    """A deadline every clinic reads alike, wherever it is: `2027-01-31 14:00 UTC`."""
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def _clinic_language(provider: Provider) -> str:
    return _template_language(provider.languages[0] if provider.languages else "en")


def _clinic_context(request: QuoteRequest, provider: Provider, language: str) -> dict[str, Any]:
    """What a clinic may know of a request: never the patient's name, email or phone."""
    return {
        "reference": request.reference,
        "provider_name": provider.name,
        "patient_age": request.patient_age,
        "travel_from": request.travel_from.isoformat() if request.travel_from else None,
        "travel_to": request.travel_to.isoformat() if request.travel_to else None,
        "message": masking.for_clinic(
            request.message, request.country_of_residence, request.destination_code
        ),
        **_labels(request, language),
    }


def prepare_provider_email(
    request: QuoteRequest, provider: Provider, invitation: Invitation, link: str
) -> Notification:
    """A clinic's invitation to quote, with its own link: the minimum a clinic needs."""
    language = _clinic_language(provider)
    context = {
        **_clinic_context(request, provider, language),
        "link": link,
        "respond_by": deadline_text(invitation.respond_by),
        "response_hours": f"{current_app.config['CLINIC_RESPONSE_HOURS']:g}",
    }
    return _record(
        request,
        "provider",
        # The salt changes when a closed invitation is reopened: a new email.
        f"provider:{request.id}:{invitation.id}:{invitation.token_salt}",
        provider.contact_email,
        language,
        context,
    )


def prepare_invitation_reminder(
    request: QuoteRequest, invitation: Invitation, link: str
) -> Notification:
    """The one reminder of an unanswered invitation, half way to its deadline."""
    provider = invitation.provider
    language = _clinic_language(provider)
    context = {
        "reference": request.reference,
        "provider_name": provider.name,
        "link": link,
        "respond_by": deadline_text(invitation.respond_by),
        **_labels(request, language),
    }
    return _record(
        request,
        "invitation_reminder",
        f"invitation_reminder:{invitation.id}",
        provider.contact_email,
        language,
        context,
    )


def stop_invitation_emails(request: QuoteRequest, invitation: Invitation) -> bool:
    """Cancel an invitation's emails not sent yet (its invitations, its reminder); the
    caller commits.

    Returns whether one of them reached the clinic, or may have: `sent`, or
    `sending` (a worker has it now). Each is locked first, so a worker that
    claims one meanwhile either finds it cancelled or has marked it `sending`.
    Found by their dedupe keys (see the prepare_ functions above), not by
    address: the clinic's address may have changed since.
    """
    emails = db.session.execute(
        db.select(Notification)
        .where(
            Notification.quote_request_id == request.id,
            db.or_(
                Notification.dedupe_key.startswith(
                    f"provider:{request.id}:{invitation.id}:", autoescape=True
                ),
                Notification.dedupe_key == f"invitation_reminder:{invitation.id}",
            ),
        )
        .order_by(Notification.id)
        .with_for_update()
    ).scalars()
    reached = False
    for email in emails:
        if email.status == N.PENDING:
            # Its outbox row, when it runs, finds the email final and completes.
            email.status = N.SUPPRESSED
            email.last_error = "not sent: the clinic was withdrawn from the request first"
        elif email.status in (N.SENDING, N.SENT):
            reached = True
    return reached


def prepare_withdrawal_notice(request: QuoteRequest, provider: Provider) -> Notification:
    """Tell a clinic a reroute took the request from it, and to delete what it received.

    The reference only: no health data, nothing of the patient. Once per reroute.
    """
    language = _clinic_language(provider)
    context = {"reference": request.reference, "provider_name": provider.name}
    return _record(
        request,
        "withdrawal_notice",
        f"withdrawal_notice:{request.id}:{provider.id}:{request.version}",
        provider.contact_email,
        language,
        context,
    )


def prepare_no_quotes_alert(request: QuoteRequest, invitations: list[Invitation]) -> Notification:
    """Tell the coordinators, once, that every clinic was asked and none quoted."""
    context = {
        "reference": request.reference,
        "invitations": [
            {"name": i.provider.name, "status": i.status, "reason": i.decline_reason}
            for i in invitations
        ],
        **_labels(request, "en"),
    }
    return _record(
        request,
        "no_quotes_alert",
        f"no_quotes_alert:{request.id}",
        current_app.config["COORDINATORS_EMAIL"],
        "en",
        context,
    )


def prepare_unroutable_alert(request: QuoteRequest, decision: RoutingDecision) -> Notification:
    context = {
        "reference": request.reference,
        "candidates": [{"name": c["name"], "reasons": c["reasons"]} for c in decision.candidates],
        **_labels(request, "en"),
    }
    return _record(
        request,
        "unroutable_alert",
        f"unroutable_alert:{request.id}:{decision.id}",
        current_app.config["COORDINATORS_EMAIL"],
        "en",
        context,
    )


def backoff(attempts: int) -> timedelta:
    """Exponential backoff with full jitter, capped."""
    config = current_app.config
    ceiling = min(
        config["NOTIFICATION_RETRY_MAX_SECONDS"],
        config["NOTIFICATION_RETRY_BASE_SECONDS"] * 2 ** (attempts - 1),
    )
    return timedelta(seconds=random.uniform(ceiling / 2, ceiling))


def deliver(outbox_id: int, holder: str | None = None) -> str:
    """Send the notification of an outbox row; return what happened.

    `holder` names this task run (a fresh one when not given); a run that
    retries after a transient error passes the same one, so it is not taken
    for a second, concurrent delivery.
    """
    holder = holder or uuid.uuid4().hex
    try:
        # The lease is committed with the `sending` mark below: reads only until then.
        row = outbox.claim(outbox_id, holder, commit=False)
    except outbox.Held:
        return "in-flight"
    if row is None:
        return "done-already"
    # The request's reference comes with it (none for an alert digest): nothing to decrypt.
    notification, reference = db.session.execute(
        db.select(Notification, QuoteRequest.reference)
        .outerjoin(QuoteRequest, QuoteRequest.id == Notification.quote_request_id)
        .where(Notification.id == row.payload["notification_id"])
        .with_for_update(of=Notification)
    ).one()
    now = utcnow()
    if notification.status in NOTIFICATION_FINAL:
        outbox.complete(row, now)
        db.session.commit()
        return "done-already"
    # `sending` here means the run that set it is gone (the claim would have
    # refused a live one): the email goes again, the same bytes and Message-ID.

    # Read once here, not reloaded after the commit: what the send, its log
    # line and its event need.
    outgoing = Outgoing.of(outbox_id, notification, reference)

    # Record before sending, with the claim's lease: a crash from here on
    # leaves "sending", not "pending", and a lease that runs out.
    _mark_attempt(notification, now)
    db.session.commit()
    with outbox.lease_kept([outbox_id], holder):
        return _send(outgoing)


@dataclass(frozen=True)
class Outgoing:
    """What a send, its log line and its event need, read before the commit that precedes it."""

    outbox_id: int
    notification_id: int
    request_id: int | None
    kind: str
    recipient: str
    mime: str
    reference: str | None

    @classmethod
    def of(cls, outbox_id: int, notification: Notification, reference: str | None) -> Outgoing:
        return cls(
            outbox_id,
            notification.id,
            notification.quote_request_id,
            notification.kind,
            notification.recipient,
            notification.mime,
            reference,
        )


def _mark_attempt(notification: Notification, now: datetime) -> None:
    notification.status = N.SENDING
    notification.attempts = (notification.attempts or 0) + 1  # none yet on a new one
    notification.last_attempt_at = now


def _send(outgoing: Outgoing) -> str:
    """Send an email recorded `sending`, then record what happened.

    The caller keeps the lease of its row meanwhile (`outbox.lease_kept`).
    """
    reference, kind = outgoing.reference, outgoing.kind
    try:
        sender_from_config(current_app.config).send(
            outgoing.recipient, outgoing.mime.encode("utf-8"), label=f"{_about(reference)}-{kind}"
        )
    except SendError as error:
        return _failed_attempt(outgoing, error)
    except Exception as error:
        # Anything else that breaks around a send is an attempt all the same:
        # counted, retried with backoff and in the end `failed`, never a task
        # that dies and leaves the email `sending` to be re-published forever.
        log.warning("unexpected %s sending %s", type(error).__name__, kind)
        db.session.rollback()
        unexpected = TransientSendError(f"unexpected: {type(error).__name__}: {error}")
        return _failed_attempt(outgoing, unexpected)

    _record_sent(outgoing.outbox_id, outgoing.notification_id, outgoing.request_id, kind)
    log.info("sent %s for %s", kind, _about(reference))
    return "sent"


def outgoing_of(rows: list[OutboxMessage], reference: str | None) -> list[Outgoing]:
    """The emails of send rows a routing queued claimed (`outbox.claimed_for`), before its commit.

    Their notifications were written `sending` (`_record`): the routing's
    commit records the attempt that `send_held` makes next.
    """
    wanted = {row.payload["notification_id"]: row.id for row in rows}
    if not wanted:
        return []
    # One SELECT for all (the session keeps no strong hold on the rows it flushed).
    loaded = db.session.execute(db.select(Notification).where(Notification.id.in_(wanted)))
    by_id = {notification.id: notification for notification in loaded.scalars()}
    return [Outgoing.of(row_id, by_id[nid], reference) for nid, row_id in wanted.items()]


def send_held(emails: list[Outgoing], holder: str) -> None:
    """Send, in turn, the emails a routing queued claimed and committed (`outgoing_of`).

    No claim and no `sending` commit of their own: the routing's commit holds
    both. The acknowledgement goes first (it was queued first), one relay and
    broker trip sooner than through its own task. When one is deferred (the
    SMTP server is away or said 4xx), the rest go back to the relay at once,
    `pending` and with no attempt counted: an outage costs the routing one
    attempt, not one per email.
    """
    if not emails:
        return
    # Every held row's lease is renewed until the last is sent: a slow server
    # must not let another run take one the routing will still send.
    with outbox.lease_kept([email.outbox_id for email in emails], holder):
        for index, email in enumerate(emails):
            if _send(email) == "deferred":
                _hand_back(emails[index + 1 :], holder)
                return


def _hand_back(emails: list[Outgoing], holder: str) -> None:
    if emails:
        db.session.execute(
            update(Notification)
            .where(
                Notification.id.in_([email.notification_id for email in emails]),
                Notification.status == N.SENDING,
            )
            .values(status=N.PENDING, attempts=Notification.attempts - 1, last_attempt_at=None)
            .execution_options(synchronize_session=False)
        )
    outbox.release([email.outbox_id for email in emails], holder)


class SentNotRecorded(Exception):
    """The SMTP server took the email but `sent` could not be committed.

    Not transient for the task: running the delivery again would send again.
    The row's lease runs out and the email goes once more (same Message-ID):
    the one duplicate the service accepts, after the database stayed away for
    the whole retry window.
    """


def _record_sent(outbox_id: int, notification_id: int, request_id: int | None, kind: str) -> None:
    """Commit `sent`, retried with a short backoff: the email has gone, only the record waits.

    Written by id, without loading the rows again: the notification is this
    run's (its outbox row's lease says so) and `sending`.
    """

    def record() -> None:
        now = utcnow()
        writes: list[Write] = [
            update(Notification)
            .where(Notification.id == notification_id)
            .values(status=N.SENT, sent_at=now, last_error=None),
            outbox.completion_by_id(outbox_id, now),
        ]
        if request_id is not None:  # a digest to the coordinators has no timeline
            writes.append(
                timeline.insertion(
                    request_id,
                    notification_event(kind, N.SENT),
                    Actor.SYSTEM,
                    data=_event_data(notification_id, kind),
                    at=now,
                )
            )
        # One round trip and the COMMIT: this runs once per email sent.
        execute_together(writes)
        db.session.commit()

    try:
        retry_transient(record, SENT_RECORD_RETRY_SECONDS, on_retry=db.session.rollback)
    except Exception as error:
        db.session.rollback()
        raise SentNotRecorded(type(error).__name__) from error


def _about(reference: str | None) -> str:
    return reference if reference is not None else "the coordinators"


def _failed_attempt(outgoing: Outgoing, error: SendError) -> str:
    row = db.session.get_one(OutboxMessage, outgoing.outbox_id)
    notification = db.session.get_one(Notification, outgoing.notification_id)
    reference = outgoing.reference
    notification.last_error = str(error)[:1000]
    gave_up = error.permanent or (
        notification.attempts >= current_app.config["NOTIFICATION_MAX_ATTEMPTS"]
    )
    if gave_up:
        notification.status = N.FAILED
        outbox.complete(row)
        _event(notification.quote_request_id, notification, N.FAILED, notification.last_error)
        # The SMTP reply may quote the address: it stays in the database, not the log.
        log.warning("%s for %s failed", notification.kind, _about(reference))
    else:
        notification.status = N.PENDING
        outbox.retry_at(row, utcnow() + backoff(notification.attempts))
        _event(notification.quote_request_id, notification, "deferred", notification.last_error)
    db.session.commit()
    return "failed" if gave_up else "deferred"


def _quote_view(quote: ClinicQuote, language: str, items: dict[str, str]) -> dict[str, Any]:
    """One quote as the patient reads it: amounts and dates in their language's formats."""

    def money(amount: Decimal) -> str:
        return format_currency(amount, quote.currency, locale=language)

    def day(value: date | None) -> str | None:
        return format_date(value, format="long", locale=language) if value else None

    return {
        "clinic": quote.provider.name,
        "price": money(quote.price_min)
        if quote.price_max is None or quote.price_max == quote.price_min
        else f"{money(quote.price_min)} – {money(quote.price_max)}",
        "is_range": quote.price_max is not None and quote.price_max != quote.price_min,
        "includes": [items.get(slug, slug) for slug in quote.includes],
        "excludes": [items.get(slug, slug) for slug in quote.excludes],
        "valid_until": day(quote.valid_until),
        "earliest_start": day(quote.earliest_start),
        "evidence": quote.evidence,
        "trial_id": quote.trial_id,
        "doctor": quote.doctor,
        "notes": quote.notes,
    }


def patient_quote_view(quote: ClinicQuote, language: str) -> dict[str, Any]:
    """One sent quote as the quote email shows it, for the patient's page."""
    return _quote_view(quote, _template_language(language), quote_item_names(language))


def prepare_quotes_email(
    request: QuoteRequest, quotes: list[ClinicQuote], dedupe_key: str
) -> Notification:
    """The patient's quotes side by side, with every disclaimer in scope for quotes."""
    language = _template_language(request.preferred_language)
    disclaimers = acknowledgement_disclaimers(
        language, request.destination_code, request.condition_slug, context="quote"
    )
    items = quote_item_names(language)
    context = {
        "reference": request.reference,
        "full_name": request.full_name,
        "quotes": [_quote_view(q, language, items) for q in quotes],
        "disclaimers": disclaimer_views(disclaimers),
        "patient_link": patient_tokens.link(request),
        **_labels(request, language),
        **who_we_are(),
    }
    return _record(request, "quotes", dedupe_key, request.email, language, context, disclaimers)


def prepare_interest_alert(request: QuoteRequest, quote: ClinicQuote) -> Notification:
    """Tell the coordinators a patient is interested in one quote; once per quote."""
    context = {"reference": request.reference, "clinic": quote.provider.name}
    return _record(
        request,
        "interest_alert",
        f"interest_alert:{request.id}:{quote.id}",
        current_app.config["COORDINATORS_EMAIL"],
        "en",
        context,
    )


def prepare_privacy_request_alert(
    request: QuoteRequest, privacy_request: PrivacyRequest
) -> Notification:
    """Tell the coordinators a patient asked for a copy or an erasure, and by when it is due."""
    context = {
        "reference": request.reference,
        "kind": privacy_request.kind,
        "requested_at": deadline_text(privacy_request.requested_at),
        "due_at": deadline_text(privacy_request.due_at),
    }
    return _record(
        request,
        "privacy_request_alert",
        f"privacy_request_alert:{privacy_request.id}",
        current_app.config["COORDINATORS_EMAIL"],
        "en",
        context,
    )


def prepare_sla_alert(request: QuoteRequest) -> Notification:
    """Tell the coordinators a request has waited past the first-response SLA; once per request."""
    labels = _labels(request, "en")
    context = {
        "reference": request.reference,
        "hours": current_app.config["SLA_FIRST_RESPONSE_HOURS"],
        "created_at": request.created_at,
        "status": request.status,
        "destination_name": labels["destination_name"],
        "condition_name": labels["condition_name"],
    }
    return _record(
        request,
        "sla_alert",
        f"sla_alert:{request.id}",
        current_app.config["COORDINATORS_EMAIL"],
        "en",
        context,
    )


def prepare_assignment_notice(
    request: QuoteRequest, assignee: User, assigned_by: str
) -> Notification:
    """Tell a coordinator someone else assigned them a request: the reference, no health data."""
    context = {
        "reference": request.reference,
        "assignee": assignee.name or assignee.email,
        "assigned_by": assigned_by.removeprefix("user:"),
    }
    return _record(
        request,
        "assignment_notice",
        f"assignment_notice:{request.id}:{request.version}:{assignee.id}",
        assignee.email,
        "en",
        context,
    )
