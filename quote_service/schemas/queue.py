"""The coordinators' queue: query arguments, request bodies and responses."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow.utils import get_value

from quote_service.models import MAX_ID, Outcome, RequestStatus, utcnow, vocabulary
from quote_service.schemas.base import StrictSchema, Text, UTCDateTime
from quote_service.schemas.fields import ID_RANGE, CountryCode
from quote_service.schemas.intake import QuoteRequestInSchema
from quote_service.schemas.quotes import InvitationSchema, QuoteSchema
from quote_service.services import sla

NOTE = Text(multiline=True, validate=ma.validate.Length(min=1, max=5000))
VERSION = ma.fields.Integer(
    strict=True,
    metadata={"description": "Optional: the version you read (a stale one is a 409); or If-Match."},
)


class QueueQuerySchema(StrictSchema):
    status = ma.fields.List(
        Text(validate=ma.validate.OneOf(list(RequestStatus))),
        metadata={"description": "Repeat for several. Spam is listed only when asked for."},
    )
    destination = CountryCode()
    condition = Text(validate=ma.validate.Length(max=64))
    provider = ma.fields.Integer(validate=ID_RANGE, metadata={"description": "A provider id."})
    assignee = Text(
        validate=ma.validate.Regexp(r"^(me|none|\d{1,9})$", error="Use me, none or a user id."),
        metadata={"description": "`me`, `none` (unassigned) or a user id."},
    )
    q = Text(
        validate=ma.validate.Length(min=1, max=320),
        metadata={"description": "A reference, an exact email address, or part of a name."},
    )
    created_after = UTCDateTime()
    created_before = UTCDateTime()
    sla = Text(
        validate=ma.validate.OneOf(["breached", "due_soon"]),
        metadata={
            "description": "`breached`: no first response within the SLA; `due_soon`: "
            "none yet, and due within the last quarter of the SLA."
        },
    )
    waiting_on = Text(
        validate=ma.validate.OneOf(["clinic"]),
        metadata={"description": "`clinic`: an invited clinic has not answered yet."},
    )
    urgent = ma.fields.Boolean(
        metadata={"description": "`true`: only requests flagged for urgent symptoms."}
    )
    sort = Text(
        load_default="newest",
        validate=ma.validate.OneOf(["newest", "oldest", "sla"]),
        metadata={
            "description": "`newest` first (default), `oldest` first (FIFO work), or `sla`: "
            "most urgent first (the requests awaiting a first response, soonest due first; "
            "then the others, oldest first)."
        },
    )
    limit = ma.fields.Integer(load_default=25, validate=ma.validate.Range(min=1, max=100))
    cursor = Text(
        validate=ma.validate.Length(max=200),
        metadata={"description": "`next_cursor` of the previous page."},
    )
    format = Text(
        validate=ma.validate.OneOf(["json", "csv"]),
        metadata={
            "description": "`csv`: every matching request as CSV (as `Accept: text/csv`), "
            "streamed, without paging; `limit` and `cursor` do not apply."
        },
    )


class ProviderRefSchema(ma.Schema):
    id = ma.fields.Integer()
    slug = ma.fields.String()
    name = ma.fields.String()


class UserRefSchema(ma.Schema):
    id = ma.fields.Integer()
    email = ma.fields.String()
    name = ma.fields.String(allow_none=True, metadata={"description": "The display name."})


class ViewerSchema(ma.Schema):
    user = ma.fields.String(metadata={"description": "The email of a console user."})
    since = ma.fields.DateTime()


class QueueItemSchema(ma.Schema):
    reference = ma.fields.String()
    status = ma.fields.String()
    version = ma.fields.Integer()
    created_at = ma.fields.DateTime()
    updated_at = ma.fields.DateTime()
    destination = ma.fields.String(attribute="destination_code")
    condition = ma.fields.String(attribute="condition_slug")
    treatment = ma.fields.String(attribute="treatment_slug")
    preferred_language = ma.fields.String()
    full_name = ma.fields.String()
    country_of_residence = ma.fields.String()
    patient_age = ma.fields.Integer(allow_none=True)
    urgent = ma.fields.Boolean(metadata={"description": "Flagged for urgent symptoms."})
    sla_due_at = ma.fields.Method(
        "dump_sla_due_at",
        metadata={
            "type": "string",
            "format": "date-time",
            "nullable": True,
            "description": "When a first response is due; null once someone has responded.",
        },
    )
    waiting_seconds = ma.fields.Method(
        "dump_waiting_seconds",
        metadata={
            "type": "integer",
            "nullable": True,
            "description": "Seconds since the patient sent it, while it is open; null once ended.",
        },
    )
    last_activity_at = ma.fields.DateTime(
        metadata={"description": "The time of its latest timeline event."}
    )
    outcome = ma.fields.String(
        allow_none=True,
        metadata={
            "description": "How a closed request ended: "
            + ", ".join(f"`{o}`" for o in Outcome)
            + "; null unless closed."
        },
    )
    provider = ma.fields.Nested(ProviderRefSchema, allow_none=True)
    assignee = ma.fields.Nested(UserRefSchema, allow_none=True)
    viewers = ma.fields.List(
        ma.fields.Nested(ViewerSchema),
        dump_default=list,
        metadata={"description": "Console users who have the request open now."},
    )

    def dump_sla_due_at(self, item: Any) -> str | None:
        clock = sla.clock(get_value(item, "created_at"), get_value(item, "status"))
        return clock["due_at"].isoformat() if clock else None

    def dump_waiting_seconds(self, item: Any) -> int | None:
        if get_value(item, "status") not in vocabulary.OPEN:
            return None
        return int((utcnow() - get_value(item, "created_at")).total_seconds())


class QueuePageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(QueueItemSchema))
    next_cursor = ma.fields.String(allow_none=True)


class DecisionSchema(ma.Schema):
    id = ma.fields.Integer()
    outcome = ma.fields.String()
    provider_id = ma.fields.Integer(allow_none=True)
    actor = ma.fields.String()
    note = ma.fields.String(allow_none=True)
    decided_at = ma.fields.DateTime()
    candidates = ma.fields.List(
        ma.fields.Dict(),
        metadata={"description": "Every provider considered: eligible, reasons, load, chosen."},
    )


class RoutingSchema(ma.Schema):
    decision = ma.fields.Nested(DecisionSchema, allow_none=True)
    history = ma.fields.List(ma.fields.Nested(DecisionSchema))


class NotificationSchema(ma.Schema):
    id = ma.fields.Integer()
    kind = ma.fields.String()
    recipient = ma.fields.String()
    language = ma.fields.String()
    status = ma.fields.String()
    subject = ma.fields.String()
    message_id = ma.fields.String()
    body_sha256 = ma.fields.String()
    disclaimers = ma.fields.List(ma.fields.Dict())
    attempts = ma.fields.Integer()
    last_error = ma.fields.String(allow_none=True)
    last_attempt_at = ma.fields.DateTime(allow_none=True)
    sent_at = ma.fields.DateTime(allow_none=True)
    created_at = ma.fields.DateTime()


class EventSchema(ma.Schema):
    id = ma.fields.Integer()
    type = ma.fields.String()
    actor = ma.fields.String()
    at = ma.fields.DateTime()
    note = ma.fields.String(allow_none=True)
    data = ma.fields.Dict(allow_none=True)


class ConsentSchema(ma.Schema):
    privacy = ma.fields.Boolean(attribute="consent_privacy")
    marketing = ma.fields.Boolean(attribute="consent_marketing")
    version = ma.fields.Integer(attribute="consent_version")
    language = ma.fields.String(attribute="consent_language")
    at = ma.fields.DateTime(attribute="consented_at")
    # The consent's whole state: given when, which text, withdrawn when (null: in force).
    given_at = ma.fields.Function(
        lambda detail: detail.consented_at.isoformat(), metadata={"format": "date-time"}
    )
    withdrawn_at = ma.fields.DateTime(attribute="consent_withdrawn_at", allow_none=True)


class DuplicateRefSchema(ma.Schema):
    reference = ma.fields.String()
    created_at = ma.fields.DateTime()
    status = ma.fields.String()


class RequestDetailSchema(QueueItemSchema):
    email = ma.fields.String()
    phone = ma.fields.String(allow_none=True)
    travel_from = ma.fields.Date(allow_none=True)
    travel_to = ma.fields.Date(allow_none=True)
    budget_eur = ma.fields.Integer(allow_none=True)
    message = ma.fields.String(allow_none=True)
    consent = ma.fields.Method("dump_consent")
    routing = ma.fields.Nested(RoutingSchema)
    notifications = ma.fields.List(ma.fields.Nested(NotificationSchema))
    invitations = ma.fields.List(ma.fields.Nested(InvitationSchema))
    quotes = ma.fields.List(ma.fields.Nested(QuoteSchema))
    timeline = ma.fields.List(ma.fields.Nested(EventSchema))
    safety = ma.fields.Nested(
        "SafetySchema",
        metadata={
            "description": "Urgent symptoms: the rules that matched, their version, the review."
        },
    )
    possible_duplicate_of = ma.fields.String(
        allow_none=True,
        metadata={
            "description": "The open request this one resembles, while no coordinator has "
            "merged it or kept it apart: until then it is neither routed nor acknowledged."
        },
    )
    merged_into = ma.fields.String(
        allow_none=True, metadata={"description": "The request this one was merged into."}
    )
    possible_duplicates = ma.fields.List(
        ma.fields.Nested(DuplicateRefSchema),
        dump_default=list,
        metadata={
            "description": "The requests to look at beside this one: the one it resembles, "
            "or those resembling it, still undecided."
        },
    )

    def dump_consent(self, detail: Any) -> dict[str, Any]:
        return ConsentSchema().dump(detail)


class TransitionInSchema(StrictSchema):
    to = Text(required=True, validate=ma.validate.OneOf(list(RequestStatus)))
    note = NOTE
    version = VERSION
    outcome = Text(
        validate=ma.validate.OneOf(list(Outcome)),
        metadata={"description": "Required when `to` is `closed`, refused otherwise."},
    )

    @ma.validates_schema
    def outcome_only_when_closing(self, data: dict[str, Any], **kwargs: Any) -> None:
        # Its absence when closing is the workflow's 422, after an illegal move's 409.
        if data["to"] != RequestStatus.CLOSED and "outcome" in data:
            raise ma.ValidationError(["Only closing takes an outcome."], "outcome")


class ReopenInSchema(StrictSchema):
    reason = Text(
        multiline=True,
        required=True,
        validate=ma.validate.Length(min=1, max=5000),
        metadata={"description": "Why it is taken up again (kept on the timeline)."},
    )
    version = VERSION


#: What a coordinator may correct of what the patient typed.
CORRECTABLE = ("full_name", "email", "phone", "preferred_language", "travel_from", "travel_to")
#: The optional ones at intake, which null clears.
CLEARABLE = ("phone", "travel_from", "travel_to")


class CorrectionInSchema(QuoteRequestInSchema):
    """A correction of what the patient typed: the intake's own fields and rules.

    Only the fields sent change, and null clears an optional one. The phone is
    read in the request's country of residence by the service, as at intake
    (the body does not carry the country).
    """

    note = NOTE
    version = VERSION

    class Meta(QuoteRequestInSchema.Meta):
        fields = (*CORRECTABLE, "note", "version")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(partial=True, **kwargs)

    def on_bind_field(self, field_name: str, field_obj: ma.fields.Field) -> None:
        super().on_bind_field(field_name, field_obj)
        # A field not sent stays as it is: no intake default (`en`) applies.
        field_obj.load_default = ma.missing
        if field_name in CLEARABLE:
            field_obj.allow_none = True

    # Redefined without their decorators, these intake hooks are not this
    # schema's: the phone needs the stored country of residence, and
    # `redirect_to` is already refused as unknown.
    def phone_is_valid(self, data: dict[str, Any], **kwargs: Any) -> None:
        return None

    def normalise_phone_number(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return data

    def redirect_only_from_forms(self, data: dict[str, Any], **kwargs: Any) -> None:
        return None

    @ma.validates_schema
    def something_to_correct(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not any(name in data for name in CORRECTABLE):
            raise ma.ValidationError(
                f"Send at least one field to correct: {', '.join(CORRECTABLE)}."
            )


class MergeInSchema(StrictSchema):
    into = Text(
        required=True,
        validate=ma.validate.Length(min=1, max=16),
        metadata={"description": "The reference of the request this one resembles."},
    )
    note = NOTE
    version = VERSION


class KeepApartInSchema(StrictSchema):
    note = NOTE
    version = VERSION


class NoteInSchema(StrictSchema):
    note = Text(multiline=True, required=True, validate=ma.validate.Length(min=1, max=5000))


class AssignmentInSchema(StrictSchema):
    assignee = ma.fields.Raw(
        required=True,
        allow_none=True,
        metadata={
            "description": "`me` to claim, a user id or a user's email, or null to unassign."
        },
    )
    note = NOTE
    version = VERSION

    @ma.validates("assignee")
    def assignee_shape(self, value: Any, **kwargs: Any) -> None:
        if value is None or value == "me":
            return
        if isinstance(value, str) and "@" in value and 3 <= len(value) <= 320:
            return  # an email: the service looks it up
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ID:
            raise ma.ValidationError("Use me, a user id, a user's email, or null.")


class RouteInSchema(StrictSchema):
    provider_id = ma.fields.Integer(
        strict=True,
        allow_none=True,
        validate=ID_RANGE,
        load_default=None,
        metadata={"description": "A provider to route to; omit to run routing again."},
    )
    note = NOTE
    version = VERSION


class ResendInSchema(StrictSchema):
    note = NOTE


# --- Urgent symptoms (see quote_service/services/safety.py) ---


class MatchedRuleSchema(ma.Schema):
    id = ma.fields.String()
    category = ma.fields.String()
    label = ma.fields.String()
    language = ma.fields.String(metadata={"description": "The language whose words matched."})


class SafetySchema(ma.Schema):
    urgent = ma.fields.Boolean()
    rules_version = ma.fields.String(
        allow_none=True, metadata={"description": "The version of the rule file that flagged it."}
    )
    rules = ma.fields.List(ma.fields.Nested(MatchedRuleSchema))
    verdict = ma.fields.String(
        allow_none=True, metadata={"description": "`confirmed`, `false_alarm` or null."}
    )
    reviewed_by = ma.fields.String(allow_none=True)
    reviewed_at = ma.fields.DateTime(allow_none=True)
