"""The product's words: statuses, event types and actors, and the named groups of statuses.

Every status a row can hold, every event type the timeline records and every
actor that is not a person is spelled here once. A group of statuses has one
meaning, written beside it; code asks a group ("is this request open?"), never
a list of its own.
"""

from __future__ import annotations

from enum import StrEnum


class RequestStatus(StrEnum):
    """A quote request's place in the workflow (see services/workflow.py).

    received ──(worker)──▶ routed | unroutable ──▶ in_review ──▶ quoted ──▶ closed;
    rejected, withdrawn and spam may be reached from any open state.
    """

    RECEIVED = "received"
    ROUTED = "routed"
    UNROUTABLE = "unroutable"
    IN_REVIEW = "in_review"
    QUOTED = "quoted"
    CLOSED = "closed"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"
    SPAM = "spam"


S = RequestStatus
#: Still being worked on: the patient may be written to (a resend, a quote).
OPEN = (S.RECEIVED, S.ROUTED, S.UNROUTABLE, S.IN_REVIEW, S.QUOTED)
#: Nothing more happens: no email, no clinic; the retention clock runs.
ENDED = (S.CLOSED, S.REJECTED, S.WITHDRAWN, S.SPAM)
#: Open and no quote sent yet: it may go to another clinic, and a resubmission
#: of the same request is taken for it.
BEFORE_QUOTE = (S.RECEIVED, S.ROUTED, S.UNROUTABLE, S.IN_REVIEW)
#: Nobody has responded yet (in_review and later count as a response): the SLA clock runs.
AWAITING_FIRST_RESPONSE = (S.RECEIVED, S.ROUTED, S.UNROUTABLE)
#: Clinics may be invited to quote (routed by the worker, or being reviewed).
INVITING = (S.ROUTED, S.IN_REVIEW)
#: Kept out of the default queue and of the statistics' totals; shown when asked for.
NOT_REAL = (S.SPAM,)
#: The endings a coordinator may choose from any open state.
COORDINATOR_ENDINGS = (S.REJECTED, S.WITHDRAWN, S.SPAM)
#: Ended by a coordinator's decision, which a coordinator may take back within
#: REOPEN_DAYS (withdrawn is the patient's, spam was never a request).
REOPENABLE = (S.CLOSED, S.REJECTED)


class Outcome(StrEnum):
    """Why a request was closed: what became of it, for the statistics and the record."""

    BOOKED = "booked"
    PATIENT_DECLINED = "patient-declined"
    NO_RESPONSE = "no-response"
    CLINIC_DECLINED = "clinic-declined"
    OTHER = "other"


class NotificationStatus(StrEnum):
    """pending -> sending -> sent; sending -> pending (a retry) or failed.

    blocked (a disclaimer missing) and suppressed (the recipient's daily cap)
    are never sent; grouped: an alert over the coordinators' cap waiting for
    the next digest; digested: it went out in one (services/alerts.py).
    """

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    BLOCKED = "blocked"
    SUPPRESSED = "suppressed"
    GROUPED = "grouped"
    DIGESTED = "digested"


N = NotificationStatus
#: Nothing more will be tried: a task that finds one of these has nothing to do.
NOTIFICATION_FINAL = (N.SENT, N.FAILED, N.BLOCKED, N.SUPPRESSED, N.GROUPED, N.DIGESTED)
#: Its story is over: nothing will send it or put it in a digest, so its body
#: may be dropped after MAIL_BODY_RETENTION_DAYS.
NOTIFICATION_SETTLED = (N.SENT, N.FAILED, N.BLOCKED, N.SUPPRESSED, N.DIGESTED)


class InvitationStatus(StrEnum):
    OPEN = "open"
    QUOTED = "quoted"
    DECLINED = "declined"
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"


#: Still working on the request: an invitation that takes an answer (a quote,
#: or a replacement of it) and whose clinic the patient is told about.
INVITATION_ANSWERABLE = (InvitationStatus.OPEN, InvitationStatus.QUOTED)


class QuoteStatus(StrEnum):
    SUBMITTED = "submitted"
    SENT = "sent"
    WITHDRAWN = "withdrawn"


class PrivacyRequestStatus(StrEnum):
    """open -> fulfilled (an admin ran the export or the erasure of the person)."""

    OPEN = "open"
    FULFILLED = "fulfilled"


class Actor(StrEnum):
    """Who did it, when it was not a signed-in person (whose actor is their email)."""

    SYSTEM = "system"  # the worker, the scheduler, the service itself
    PATIENT = "patient"  # the patient, through the form or their link
    CLI = "cli"  # an operator at the command line


class EventType(StrEnum):
    """The timeline's event types, other than the two families below.

    A status change is recorded under the new status's own name
    (`status_event`); an email's fate under its kind and outcome
    (`notification_event`).
    """

    NOTE = "note"
    ASSIGNED = "assigned"
    UNASSIGNED = "unassigned"
    REROUTED = "rerouted"
    ERASED = "erased"
    ACKNOWLEDGEMENT_RESENT = "acknowledgement_resent"
    DUPLICATE_SUBMISSION = "duplicate_submission"
    POSSIBLE_DUPLICATE = "possible_duplicate"
    MERGED = "merged"
    KEPT_APART = "kept_apart"
    PRIVACY_REQUESTED = "privacy_requested"
    PRIVACY_REQUEST_FULFILLED = "privacy_request_fulfilled"
    QUOTE_SUBMITTED = "quote_submitted"
    QUOTE_REPLACED = "quote_replaced"
    QUOTES_SENT = "quotes_sent"
    PATIENT_INTEREST = "patient_interest"
    URGENT_FLAGGED = "urgent_flagged"
    SAFETY_REVIEW = "safety_review"
    SLA_BREACHED = "sla_breached"
    INVITATION_SENT = "invitation_sent"
    INVITATION_DECLINED = "invitation_declined"
    INVITATION_EXPIRED = "invitation_expired"
    INVITATION_WITHDRAWN = "invitation_withdrawn"
    PROCESSING_FAILED = "processing_failed"
    CORRECTED = "corrected"
    REOPENED = "reopened"


def status_event(status: RequestStatus | str) -> str:
    """The event type that records a request reaching `status`: the status's name."""
    return RequestStatus(status).value


#: The event types that record a status change.
STATUS_EVENTS = frozenset(status_event(status) for status in RequestStatus)


def notification_event(kind: str, outcome: str) -> str:
    """The event type of what became of an email: `<kind>_<outcome>`, e.g. `provider_sent`."""
    return f"{kind}_{outcome}"
