"""Reading the queue: filtered keyset pages, and one request in full."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import email_validator
import phonenumbers
from phonenumbers import SUPPORTED_REGIONS
from sqlalchemy.orm import defer, joinedload, selectinload

from quote_service.addresses import domain_of
from quote_service.crypto import keyring
from quote_service.errors import InvalidFields, NotFound
from quote_service.extensions import db
from quote_service.folding import fold
from quote_service.models import (
    MAX_ID,
    Event,
    Invitation,
    InvitationStatus,
    Notification,
    QuoteRequest,
    RoutingDecision,
    vocabulary,
)
from quote_service.services import (
    clinic_quotes,
    duplicates,
    invitations,
    presence,
    safety,
    sla,
)
from quote_service.services.privacy import record_access
from quote_service.services.references import is_reference

# sort=sla pages through two runs: the requests whose first-response clock runs
# (soonest due first), then those without one; a cursor names its run.
SLA_RUNS = {"sla": True, "sla:rest": False}


def encode_cursor(request: QuoteRequest, sort: str) -> str:
    if sort == "sla" and request.status not in vocabulary.AWAITING_FIRST_RESPONSE:
        sort = "sla:rest"
    raw = json.dumps([request.created_at.isoformat(), request.id, sort]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, sort: str) -> tuple[datetime, int, str]:
    """The (created_at, id) a page starts after, and the run it is in; opaque to clients."""
    invalid = InvalidFields({"cursor": ["This cursor is not valid; start again without it."]})
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created_at, id_, cursor_sort = json.loads(base64.urlsafe_b64decode(padded))
        moment = datetime.fromisoformat(created_at)
    except (ValueError, TypeError, binascii.Error, json.JSONDecodeError):
        raise invalid from None
    # Only cursors we made are valid: an id of the database's 32-bit range (not
    # 1e40 nor 1e999) and a time whose UTC Python can hold.
    if isinstance(id_, bool) or not isinstance(id_, int) or not 1 <= id_ <= MAX_ID:
        raise invalid
    if moment.tzinfo is None:
        raise invalid
    try:
        moment = moment.astimezone(UTC)
    except OverflowError:
        raise invalid from None
    if cursor_sort != sort and not (sort == "sla" and cursor_sort in SLA_RUNS):
        raise InvalidFields({"cursor": ["This cursor belongs to another sort order."]})
    return moment, id_, cursor_sort


# What a phone number typed into the search may look like: digits, spaces and
# the usual separators, a leading + or 00; at least 6 digits.
PHONE_LIKE = re.compile(r"^\+?[\d\s().\-/]{6,}$")


def phone_candidates(q: str) -> set[str]:
    """Every E.164 number `q` can be read as: itself if international, else in any country.

    A national number names no country, and the patient may live anywhere: it
    is read in each region whose rules make it a valid number there.
    """
    if not PHONE_LIKE.match(q) or sum(c.isdigit() for c in q) < 6:
        return set()
    text = "+" + q.strip()[2:] if q.strip().startswith("00") else q
    regions = [None] if text.strip().startswith("+") else sorted(SUPPORTED_REGIONS)
    found = set()
    for region in regions:
        try:
            number = phonenumbers.parse(text, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            found.add(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))
    return found


def _search(statement: Any, q: str) -> Any:
    """`q` is a reference, an email address or its domain, a phone number, or part of a name."""
    if is_reference(q.upper()):
        return statement.where(QuoteRequest.reference == q.upper())
    if q.startswith("@") and "@" not in q[1:]:
        hashes = keyring().lookup_hashes(domain_of(q))
        return statement.where(QuoteRequest.email_domain_hash.in_(hashes))
    if "@" in q:
        try:
            email = email_validator.validate_email(q, check_deliverability=False).normalized
        except email_validator.EmailNotValidError:
            email = q
        return statement.where(QuoteRequest.email_hash.in_(keyring().lookup_hashes(email)))
    phones = phone_candidates(q)
    if phones:
        hashes = [h for phone in sorted(phones) for h in keyring().lookup_hashes(phone)]
        return statement.where(QuoteRequest.phone_hash.in_(hashes))
    folded = fold(q)
    pattern = "%" + folded.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    return statement.where(QuoteRequest.name_folded.like(pattern, escape="\\"))


def filtered(filters: dict[str, Any], current_user_id: int) -> Any:
    """The queue's SELECT with every filter applied, in no order and without paging."""
    statement = db.select(QuoteRequest)
    if filters.get("status"):
        statement = statement.where(QuoteRequest.status.in_(filters["status"]))
    else:
        statement = statement.where(QuoteRequest.status.not_in(vocabulary.NOT_REAL))
    if filters.get("destination"):
        statement = statement.where(QuoteRequest.destination_code == filters["destination"])
    if filters.get("condition"):
        statement = statement.where(QuoteRequest.condition_slug == filters["condition"])
    if filters.get("provider") is not None:
        statement = statement.where(QuoteRequest.provider_id == filters["provider"])
    assignee = filters.get("assignee")
    if assignee == "none":
        statement = statement.where(QuoteRequest.assignee_id.is_(None))
    elif assignee is not None:
        user_id = current_user_id if assignee == "me" else int(assignee)
        statement = statement.where(QuoteRequest.assignee_id == user_id)
    if filters.get("created_after"):
        statement = statement.where(QuoteRequest.created_at >= filters["created_after"])
    if filters.get("created_before"):
        statement = statement.where(QuoteRequest.created_at < filters["created_before"])
    if filters.get("sla") == "breached":
        statement = statement.where(sla.breached())
    elif filters.get("sla") == "due_soon":
        statement = statement.where(sla.due_soon())
    if filters.get("waiting_on") == "clinic":
        # An invited clinic owes the request an answer (its invitation is open).
        statement = statement.where(
            db.exists().where(
                Invitation.quote_request_id == QuoteRequest.id,
                Invitation.status == InvitationStatus.OPEN,
            )
        )
    if filters.get("q"):
        statement = _search(statement, filters["q"])
    if filters.get("urgent") is not None:
        statement = statement.where(QuoteRequest.urgent.is_(filters["urgent"]))
    return statement


def list_requests(
    filters: dict[str, Any], current_user_id: int
) -> tuple[list[QuoteRequest], str | None]:
    """One page of the queue and the cursor of the next (None on the last page)."""
    sort = filters["sort"]
    statement = filtered(filters, current_user_id).options(
        joinedload(QuoteRequest.provider),
        joinedload(QuoteRequest.assignee),
        # A page never shows these; skipping them skips their decryption too.
        defer(QuoteRequest.email),
        defer(QuoteRequest.phone),
        defer(QuoteRequest.message),
    )
    limit = filters["limit"]
    cursor = decode_cursor(filters["cursor"], sort) if filters.get("cursor") else None
    if sort == "sla":
        rows = _sla_rows(statement, cursor, limit + 1)
    else:
        rows = _rows(statement, cursor[:2] if cursor else None, sort == "newest", limit + 1)
    next_cursor = encode_cursor(rows[limit - 1], sort) if len(rows) > limit else None
    page = rows[:limit]
    attach_viewers(page)
    attach_last_activity(page)
    return page, next_cursor


def _rows(
    statement: Any, position: tuple[datetime, int] | None, newest: bool, count: int
) -> list[QuoteRequest]:
    """`count` rows in (created_at, id) order after `position`: one index range scan."""
    key = db.tuple_(QuoteRequest.created_at, QuoteRequest.id)
    if position is not None:
        statement = statement.where(key < position if newest else key > position)
    if newest:
        statement = statement.order_by(QuoteRequest.created_at.desc(), QuoteRequest.id.desc())
    else:
        statement = statement.order_by(QuoteRequest.created_at, QuoteRequest.id)
    return list(db.session.execute(statement.limit(count)).scalars().unique())


def _sla_rows(
    statement: Any, cursor: tuple[datetime, int, str] | None, count: int
) -> list[QuoteRequest]:
    """Most urgent first: the requests whose SLA clock runs, soonest due (oldest) first;
    then the others, oldest first."""
    clocked = QuoteRequest.status.in_(vocabulary.AWAITING_FIRST_RESPONSE)
    in_first_run = cursor is None or SLA_RUNS[cursor[2]]
    rows: list[QuoteRequest] = []
    if in_first_run:
        position = cursor[:2] if cursor else None
        rows = _rows(statement.where(clocked), position, False, count)
    if len(rows) < count:
        position = None if in_first_run or cursor is None else cursor[:2]
        rows += _rows(statement.where(~clocked), position, False, count - len(rows))
    return rows


# Rows read per round trip when the whole queue is exported.
EXPORT_BATCH = 500


def each_request(filters: dict[str, Any], current_user_id: int) -> Iterator[QuoteRequest]:
    """Every request matching the filters, in their sort order, read in keyset batches.

    A batch is let go of once it has been handed on, so an export of the whole
    queue holds one batch in memory, never the queue.
    """
    page_filters = {**filters, "limit": EXPORT_BATCH, "cursor": None}
    while True:
        items, next_cursor = list_requests(page_filters, current_user_id)
        yield from items
        db.session.expunge_all()
        if next_cursor is None:
            return
        page_filters["cursor"] = next_cursor


def count_requests(filters: dict[str, Any], current_user_id: int, cap: int) -> int:
    """How many requests match, counting no further than `cap` (a cheap, bounded count)."""
    matching = filtered(filters, current_user_id).with_only_columns(QuoteRequest.id).limit(cap)
    return db.session.execute(
        db.select(db.func.count()).select_from(matching.subquery())
    ).scalar_one()


def count_many(filter_sets: list[dict[str, Any]], current_user_id: int, cap: int) -> list[int]:
    """`count_requests` for several filter sets in one statement (one round trip)."""
    if not filter_sets:
        return []
    counts = [
        db.select(db.func.count())
        .select_from(
            filtered(filters, current_user_id)
            .with_only_columns(QuoteRequest.id)
            .limit(cap)
            .subquery()
        )
        .scalar_subquery()
        for filters in filter_sets
    ]
    return list(db.session.execute(db.select(*counts)).one())


def attach_last_activity(requests: list[QuoteRequest]) -> None:
    """Set each request's `last_activity_at`: its latest timeline event (one query)."""
    latest = dict(
        db.session.execute(
            db.select(Event.quote_request_id, db.func.max(Event.at))
            .where(Event.quote_request_id.in_([request.id for request in requests]))
            .group_by(Event.quote_request_id)
        ).all()
    )
    for request in requests:
        request.last_activity_at = latest.get(request.id, request.updated_at)  # type: ignore[attr-defined]


def attach_viewers(requests: list[QuoteRequest]) -> None:
    """Set each request's `viewers` (who has it open in the console) for the schemas."""
    found = presence.viewers(request.id for request in requests)
    for request in requests:
        request.viewers = found[request.id]  # type: ignore[attr-defined]


def viewers_of(references: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Who has each of these requests open, by reference."""
    rows = db.session.execute(
        db.select(QuoteRequest.id, QuoteRequest.reference).where(
            QuoteRequest.reference.in_([reference.upper() for reference in references])
        )
    ).all()
    found = presence.viewers(id_ for id_, _ in rows)
    return {reference: found[id_] for id_, reference in rows}


def find_id(reference: str) -> tuple[int, int]:
    """A request's id and version, or 404: a cheap look-up for the console's heartbeats."""
    row = db.session.execute(
        db.select(QuoteRequest.id, QuoteRequest.version).where(
            QuoteRequest.reference == reference.upper()
        )
    ).first()
    if row is None:
        raise NotFound(f"No quote request {reference}.")
    return row[0], row[1]


def get_request(reference: str) -> QuoteRequest:
    request = db.session.execute(
        db.select(QuoteRequest)
        .where(QuoteRequest.reference == reference.upper())
        .options(
            joinedload(QuoteRequest.provider),
            joinedload(QuoteRequest.assignee),
            selectinload(QuoteRequest.events),
        )
    ).scalar_one_or_none()
    if request is None:
        raise NotFound(f"No quote request {reference}.")
    return request


@dataclass
class RequestDetail:
    """One request in full: the request itself, and what the detail shows beside it.

    Reading an attribute it does not have reads the request's (`detail.status`),
    so a schema or a page takes it as it takes a request.
    """

    request: QuoteRequest
    last_activity_at: datetime
    routing: dict[str, Any]
    notifications: list[Notification]
    invitations: list[Invitation]
    quotes: list[Any]
    timeline: list[Event]
    viewers: list[dict[str, Any]]
    safety: dict[str, Any]
    possible_duplicate_of: str | None
    merged_into: str | None
    possible_duplicates: list[dict[str, Any]]

    def __getattr__(self, name: str) -> Any:
        # Only called for names the dataclass lacks: the request's columns and relations.
        if name == "request":
            raise AttributeError(name)
        return getattr(self.request, name)


def detail(reference: str, reader: str, reader_id: int | None) -> RequestDetail:
    """The request with its routing, notifications and timeline; the read is audited."""
    request = get_request(reference)
    record_access(reader, reader_id, "read_detail", request.id)
    db.session.commit()
    decisions = list(
        db.session.execute(
            db.select(RoutingDecision)
            .where(RoutingDecision.quote_request_id == request.id)
            .order_by(RoutingDecision.id)
        ).scalars()
    )
    notifications = list(
        db.session.execute(
            db.select(Notification)
            .where(Notification.quote_request_id == request.id)
            .order_by(Notification.id)
        ).scalars()
    )
    events: list[Event] = request.events
    return RequestDetail(
        request=request,
        last_activity_at=max((event.at for event in events), default=request.updated_at),
        routing={"decision": decisions[-1] if decisions else None, "history": decisions},
        notifications=notifications,
        invitations=invitations.invitations_of(request.id),
        quotes=clinic_quotes.quotes_of(request.id),
        timeline=events,
        viewers=presence.viewers([request.id])[request.id],
        safety=safety.view(request, events),
        **duplicates.view(request),
    )
