"""Urgent symptoms: the safety review body and the `safety` of a request."""

from __future__ import annotations

import marshmallow as ma

from quote_service.models import SAFETY_VERDICTS as VERDICTS
from quote_service.schemas.base import StrictSchema
from quote_service.schemas.queue import NOTE, VERSION, SafetySchema


class SafetyReviewInSchema(StrictSchema):
    verdict = ma.fields.String(
        required=True,
        validate=ma.validate.OneOf(VERDICTS),
        metadata={"description": "`confirmed` (it was an emergency) or `false_alarm`."},
    )
    note = NOTE
    version = VERSION


class SafetyReviewOutSchema(ma.Schema):
    reference = ma.fields.String()
    version = ma.fields.Integer()
    safety = ma.fields.Nested(SafetySchema)
