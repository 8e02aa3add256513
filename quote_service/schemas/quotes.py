"""Coordinators' view of clinic quotes: invitations and quotes in the detail, sending quotes."""

from __future__ import annotations

import marshmallow as ma

from quote_service.models import QuoteStatus
from quote_service.schemas.base import StrictSchema, Text
from quote_service.schemas.fields import ID_RANGE

NOTE = Text(multiline=True, validate=ma.validate.Length(min=1, max=5000))


class ProviderNameSchema(ma.Schema):
    id = ma.fields.Integer()
    slug = ma.fields.String()
    name = ma.fields.String()


class InvitationSchema(ma.Schema):
    id = ma.fields.Integer()
    provider = ma.fields.Nested(ProviderNameSchema)
    rank = ma.fields.Integer()
    status = ma.fields.String()
    sent_at = ma.fields.DateTime()
    respond_by = ma.fields.DateTime()
    reminded_at = ma.fields.DateTime(allow_none=True)
    answered_at = ma.fields.DateTime(allow_none=True)
    decline_reason = ma.fields.String(allow_none=True)
    decline_note = ma.fields.String(allow_none=True)


class QuoteSchema(ma.Schema):
    id = ma.fields.Integer()
    provider = ma.fields.Nested(ProviderNameSchema)
    status = ma.fields.String(metadata={"enum": [str(status) for status in QuoteStatus]})
    price_min = ma.fields.Decimal(as_string=True)
    price_max = ma.fields.Decimal(as_string=True, allow_none=True)
    currency = ma.fields.String()
    includes = ma.fields.List(ma.fields.String())
    excludes = ma.fields.List(ma.fields.String())
    valid_until = ma.fields.Date()
    earliest_start = ma.fields.Date(allow_none=True)
    doctor = ma.fields.String(allow_none=True)
    evidence = ma.fields.String()
    trial_id = ma.fields.String(allow_none=True)
    notes = ma.fields.String(allow_none=True)
    submitted_at = ma.fields.DateTime()
    sent_at = ma.fields.DateTime(allow_none=True)


class QuotesSendInSchema(StrictSchema):
    quote_ids = ma.fields.List(
        ma.fields.Integer(strict=True, validate=ID_RANGE),
        required=True,
        validate=ma.validate.Length(min=1, max=10, error="Choose from 1 to 10 quotes."),
    )
    note = NOTE
    version = ma.fields.Integer(
        strict=True,
        metadata={"description": "The version you read; or send If-Match with the ETag instead."},
    )
