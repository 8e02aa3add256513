"""The detail page of one request, and every action the API has, as plain form posts.

Each change sends the version its page was showing. A stale one is refused
by the workflow service; the page then says what changed since (from the
timeline) and shows the request as it is now.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_login import login_required

from quote_service.console import bp
from quote_service.console.auth import me, safe_next
from quote_service.console.forms import load_body, read_form, whole_number
from quote_service.errors import FieldErrors, ServiceError, StaleVersion
from quote_service.models import EventType, Outcome, QuoteStatus, vocabulary
from quote_service.schemas.queue import (
    AssignmentInSchema,
    KeepApartInSchema,
    MergeInSchema,
    NoteInSchema,
    ResendInSchema,
    RouteInSchema,
    TransitionInSchema,
)
from quote_service.schemas.quotes import QuotesSendInSchema
from quote_service.schemas.safety import VERDICTS, SafetyReviewInSchema
from quote_service.services import presence, providers, queue, safety, sla, users, workflow

ITEM = "/requests/<string:reference>"
NOTE_TYPES = {EventType.NOTE}


def describe_event(event: Any, emails: dict[int, str]) -> str:
    """A timeline event in words, for the message of a stale action."""
    data = event.data or {}
    if event.type in vocabulary.STATUS_EVENTS:
        return f"{event.actor} moved it to {event.type}"
    if event.type == EventType.ASSIGNED:
        return f"{event.actor} assigned it to {emails.get(data.get('assignee_id'), 'someone')}"
    if event.type == EventType.UNASSIGNED:
        return f"{event.actor} unassigned it"
    if event.type == EventType.REROUTED:
        return f"{event.actor} routed it again"
    return f"{event.actor}: {event.type.replace('_', ' ')}"


def stale_message(detail: dict[str, Any], seen_event: int | None, version: int | None) -> str:
    emails = {user.id: user.email for user in users.list_users()}
    changes = [
        describe_event(event, emails)
        for event in detail.timeline
        if (seen_event is None or event.id > seen_event) and event.type not in NOTE_TYPES
    ]
    said = "; ".join(changes) if changes else "it was changed"
    return (
        f"Someone else changed {detail.reference} while you had it open "
        f"(you saw version {version}, it is now version {detail.version}): {said}. "
        "Nothing was changed by you; below is the request as it is now."
    )


def render_detail(
    reference: str,
    status: int = 200,
    errors: FieldErrors | None = None,
    message: str | None = None,
    stale: str | None = None,
    detail: dict[str, Any] | None = None,
) -> tuple[str, int]:
    if detail is None:
        detail = queue.detail(reference, me().actor, me().id)
    presence.heartbeat(me().id, detail.id)
    eligible = providers.list_providers(
        destination=detail.destination_code, condition=detail.condition_slug, active=True
    )
    timeline = detail.timeline
    page = render_template(
        "console/detail.html",
        r=detail,
        allowed=workflow.TRANSITIONS.get(detail.status, ()),
        # An undecided possible duplicate is merged or kept apart first.
        reroutable=detail.status in vocabulary.BEFORE_QUOTE
        and detail.possible_duplicate_of is None,
        can_resend=any(n.kind == "acknowledgement" for n in detail.notifications),
        sendable=[q for q in detail.quotes if q.status == QuoteStatus.SUBMITTED],
        verdicts=VERDICTS,
        outcomes=list(Outcome),
        eligible=eligible,
        people=[u for u in users.list_users() if u.revoked_at is None],
        clock=sla.clock(detail.created_at, detail.status),
        seen_event=timeline[-1].id if timeline else 0,
        others=[v for v in detail.viewers if v["user"] != me().email],
        errors=errors or {},
        message=message,
        stale=stale,
        heartbeat_seconds=presence.window().total_seconds() / 3,
    )
    return page, status


@bp.route(ITEM)
@login_required
def request_page(reference: str) -> Any:
    return render_detail(reference)


def posted_int(name: str) -> int | None:
    return whole_number(request.form.get(name, "").strip())


def act(
    reference: str,
    data: dict[str, Any] | None,
    errors: FieldErrors,
    change: Callable[[dict[str, Any]], Any],
    done: str,
    needs_version: bool = True,
) -> Any:
    """Run one action; on success back to where the form came from, else the page with why."""
    if data is not None and needs_version and data.get("version") is None:
        errors = {"version": ["The form lost its version; reload the page."]}
        data = None
    if data is None:
        return render_detail(reference, 422, errors=errors, message="Some fields need a look.")
    try:
        change(data)
    except StaleVersion:
        now = queue.detail(reference, me().actor, me().id)
        stale = stale_message(now, posted_int("seen_event"), data.get("version"))
        return render_detail(reference, 409, stale=stale, detail=now)
    except ServiceError as refusal:
        return render_detail(
            reference, refusal.status, errors=refusal.fields, message=refusal.message
        )
    flash(done, "success")
    target = request.form.get("return_to")
    destination = (
        safe_next(target) if target else url_for("console.request_page", reference=reference)
    )
    return redirect(destination, 303)


@bp.route(f"{ITEM}/transitions", methods=["POST"])
@login_required
def transition(reference: str) -> Any:
    data, errors = read_form(
        TransitionInSchema(), ["to", "note", "version", "outcome"], ["version"]
    )
    return act(
        reference,
        data,
        errors,
        # A person closing a request here is asked how it ended.
        lambda d: workflow.transition(
            reference,
            d["to"],
            d.get("note"),
            me().actor,
            d["version"],
            outcome=d.get("outcome"),
            require_outcome=True,
        ),
        f"Moved to {request.form.get('to', '')}.",
    )


@bp.route(f"{ITEM}/assignment", methods=["POST"])
@login_required
def assignment(reference: str) -> Any:
    raw = request.form.get("assignee", "").strip()
    assignee: Any = None if raw in ("", "none") else "me" if raw == "me" else posted_int("assignee")
    body: dict[str, Any] = {"assignee": assignee}
    if posted_int("version") is not None:
        body["version"] = posted_int("version")
    if raw not in ("", "none", "me") and assignee is None:
        body["assignee"] = raw  # the schema names what is wrong with it
    if request.form.get("note", "").strip():
        body["note"] = request.form["note"]
    data, errors = load_body(AssignmentInSchema(), body)

    def change(d: dict[str, Any]) -> Any:
        target = me().id if d["assignee"] == "me" else d["assignee"]
        return workflow.assign(reference, target, d.get("note"), me().actor, d["version"])

    done = "Unassigned." if assignee is None else "Claimed." if raw == "me" else "Assigned."
    return act(reference, data, errors, change, done)


@bp.route(f"{ITEM}/notes", methods=["POST"])
@login_required
def note(reference: str) -> Any:
    data, errors = read_form(NoteInSchema(), ["note"])
    return act(
        reference,
        data,
        errors,
        lambda d: workflow.add_note(reference, d["note"], me().actor),
        "Note added.",
        needs_version=False,
    )


@bp.route(f"{ITEM}/route", methods=["POST"])
@login_required
def reroute(reference: str) -> Any:
    data, errors = read_form(
        RouteInSchema(), ["provider_id", "note", "version"], ["provider_id", "version"]
    )
    return act(
        reference,
        data,
        errors,
        lambda d: workflow.reroute(
            reference, d["provider_id"], d.get("note"), me().actor, d["version"]
        ),
        "Routed again.",
    )


@bp.route(f"{ITEM}/merge", methods=["POST"])
@login_required
def merge(reference: str) -> Any:
    data, errors = read_form(MergeInSchema(), ["into", "note", "version"], ["version"])
    return act(
        reference,
        data,
        errors,
        lambda d: workflow.merge(reference, d["into"], d.get("note"), me().actor, d["version"]),
        f"Merged into {request.form.get('into', '')}.",
    )


@bp.route(f"{ITEM}/keep-apart", methods=["POST"])
@login_required
def keep_apart(reference: str) -> Any:
    data, errors = read_form(KeepApartInSchema(), ["note", "version"], ["version"])
    return act(
        reference,
        data,
        errors,
        lambda d: workflow.keep_apart(reference, d.get("note"), me().actor, d["version"]),
        "Kept apart: it will be routed and acknowledged.",
    )


@bp.route(f"{ITEM}/acknowledgement", methods=["POST"])
@login_required
def resend(reference: str) -> Any:
    data, errors = read_form(ResendInSchema(), ["note"])
    return act(
        reference,
        data,
        errors,
        lambda d: workflow.resend_acknowledgement(reference, d.get("note"), me().actor),
        "The acknowledgement will be sent again.",
        needs_version=False,
    )


@bp.route(f"{ITEM}/quotes/send", methods=["POST"])
@login_required
def send_quotes(reference: str) -> Any:
    """The chosen quotes (one checkbox each) go to the patient side by side."""
    chosen = [value.strip() for value in request.form.getlist("quote_ids") if value.strip()]
    if not chosen:
        errors: FieldErrors = {"quote_ids": ["Choose at least one quote to send."]}
        return act(reference, None, errors, lambda d: None, "")
    # Digits become ids; anything else goes to the schema, which says what is wrong.
    body: dict[str, Any] = {"quote_ids": [whole_number(v) or v for v in chosen]}
    if posted_int("version") is not None:
        body["version"] = posted_int("version")
    if request.form.get("note", "").strip():
        body["note"] = request.form["note"]
    data, errors = load_body(QuotesSendInSchema(), body)
    return act(
        reference,
        data,
        errors,
        lambda d: workflow.send_quotes(
            reference, d["quote_ids"], d.get("note"), me().actor, d["version"]
        ),
        "The quotes will be emailed to the patient.",
    )


@bp.route(f"{ITEM}/safety-review", methods=["POST"])
@login_required
def review_safety(reference: str) -> Any:
    data, errors = read_form(SafetyReviewInSchema(), ["verdict", "note", "version"], ["version"])
    return act(
        reference,
        data,
        errors,
        lambda d: safety.review(reference, d["verdict"], d.get("note"), me().actor, d["version"]),
        "Review recorded.",
    )


@bp.route(f"{ITEM}/presence", methods=["POST"])
@login_required
def heartbeat(reference: str) -> Any:
    """The open page's beat: keep the user listed as viewing; show who else is."""
    request_id, version = queue.find_id(reference)
    presence.heartbeat(me().id, request_id)
    viewers = presence.viewers([request_id])[request_id]
    shown = posted_int("version")
    return render_template(
        "console/_viewers.html",
        others=[v for v in viewers if v["user"] != me().email],
        changed=shown is not None and shown != version,
        reference=reference.upper(),
    )
