"""GET /statistics: query arguments and response."""

from __future__ import annotations

from typing import Any

import marshmallow as ma

from quote_service.schemas.base import StrictSchema, UTCDateTime


class StatisticsQuerySchema(StrictSchema):
    created_after = UTCDateTime(
        load_default=None,
        metadata={
            "description": "Count requests created at or after this (ISO 8601; UTC if naive)."
        },
    )
    created_before = UTCDateTime(
        load_default=None,
        metadata={"description": "Count requests created before this (ISO 8601; UTC if naive)."},
    )

    @ma.validates_schema
    def bounds_in_order(self, data: dict[str, Any], **kwargs: Any) -> None:
        after, before = data.get("created_after"), data.get("created_before")
        if after is not None and before is not None and after >= before:
            raise ma.ValidationError("Must be later than created_after.", "created_before")


Counts = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer(), required=True)


class CountsSchema(ma.Schema):
    total = ma.fields.Integer(required=True, metadata={"description": "Requests, spam left out."})
    by_status = Counts
    by_destination = Counts
    by_condition = Counts


class MedianSecondsSchema(ma.Schema):
    to_acknowledgement = ma.fields.Float(
        required=True,
        allow_none=True,
        metadata={"description": "From the request to its first sent acknowledgement."},
    )
    to_in_review = ma.fields.Float(
        required=True,
        allow_none=True,
        metadata={"description": "From the request to its first move to in_review."},
    )
    to_first_quote = ma.fields.Float(
        required=True,
        allow_none=True,
        metadata={"description": "From the request to the first quote a clinic submitted."},
    )


class SlaSchema(ma.Schema):
    first_response_hours = ma.fields.Integer(required=True)
    breached = ma.fields.Integer(
        required=True,
        metadata={"description": "Requests with no first response yet, older than the SLA."},
    )


class SafetyCountsSchema(ma.Schema):
    flagged = ma.fields.Integer(
        required=True, metadata={"description": "Requests flagged for urgent symptoms."}
    )
    confirmed = ma.fields.Integer(required=True, metadata={"description": "Reviewed: urgent."})
    false_alarm = ma.fields.Integer(
        required=True, metadata={"description": "Reviewed: a false alarm."}
    )
    unreviewed = ma.fields.Integer(required=True)


class RangeSchema(ma.Schema):
    first_day = ma.fields.Date(required=True)
    last_day = ma.fields.Date(required=True)


class DaySchema(ma.Schema):
    day = ma.fields.Date(required=True)
    by_status = Counts
    acknowledgements_sent = ma.fields.Integer(required=True)
    median_seconds_to_acknowledgement = ma.fields.Float(allow_none=True, required=True)


class NamedRefSchema(ma.Schema):
    id = ma.fields.Integer()
    slug = ma.fields.String()
    name = ma.fields.String(allow_none=True)
    email = ma.fields.String()


class ClinicFiguresSchema(ma.Schema):
    provider = ma.fields.Nested(NamedRefSchema, required=True)
    invited = ma.fields.Integer(required=True)
    quoted = ma.fields.Integer(required=True, metadata={"description": "Quotes it submitted."})
    declined = ma.fields.Integer(required=True)
    booked = ma.fields.Integer(
        required=True,
        metadata={
            "description": "Requests closed `booked` whose patient last chose its quote "
            "(or routed to it, when no choice was recorded)."
        },
    )
    median_response_hours = ma.fields.Float(allow_none=True, required=True)


class CoordinatorFiguresSchema(ma.Schema):
    user = ma.fields.Nested(NamedRefSchema, required=True)
    assigned = ma.fields.Integer(required=True, metadata={"description": "Assigned to them now."})
    closed = ma.fields.Integer(required=True, metadata={"description": "Closed by them."})
    median_seconds_to_review = ma.fields.Float(
        allow_none=True,
        required=True,
        metadata={"description": "From the request to its first review, when they took it."},
    )


class OutcomeShareSchema(ma.Schema):
    count = ma.fields.Integer(required=True)
    rate = ma.fields.Float(allow_none=True, required=True)


class OutcomesSchema(ma.Schema):
    closed = ma.fields.Integer(required=True)
    by_outcome = ma.fields.Dict(
        keys=ma.fields.String(), values=ma.fields.Nested(OutcomeShareSchema), required=True
    )


class StatisticsSchema(ma.Schema):
    counts = ma.fields.Nested(CountsSchema, required=True)
    median_seconds = ma.fields.Nested(MedianSecondsSchema, required=True)
    sla = ma.fields.Nested(SlaSchema, required=True)
    safety = ma.fields.Nested(SafetyCountsSchema, required=True)
    range = ma.fields.Nested(
        RangeSchema,
        required=True,
        metadata={"description": "The UTC days the reports below cover (default: the last 30)."},
    )
    daily = ma.fields.List(ma.fields.Nested(DaySchema), required=True)
    by_clinic = ma.fields.List(ma.fields.Nested(ClinicFiguresSchema), required=True)
    by_coordinator = ma.fields.List(ma.fields.Nested(CoordinatorFiguresSchema), required=True)
    outcomes = ma.fields.Nested(OutcomesSchema, required=True)
