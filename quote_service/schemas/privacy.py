"""Data-subject requests and the read audit."""

from __future__ import annotations

import marshmallow as ma

from quote_service.schemas.base import StrictSchema
from quote_service.schemas.fields import ID_RANGE, Email


class SubjectSchema(StrictSchema):
    email = Email(required=True, metadata={"description": "The person's email address."})


class ErasureSchema(ma.Schema):
    erased = ma.fields.Integer(metadata={"description": "How many requests were anonymised."})


class ExportSchema(ma.Schema):
    email = ma.fields.String()
    exported_at = ma.fields.String()
    quote_requests = ma.fields.List(ma.fields.Dict())


class AccessLogQuerySchema(StrictSchema):
    limit = ma.fields.Integer(load_default=50, validate=ma.validate.Range(min=1, max=500))
    before_id = ma.fields.Integer(validate=ID_RANGE)


class AccessLogEntrySchema(ma.Schema):
    id = ma.fields.Integer()
    actor = ma.fields.String()
    user_id = ma.fields.Integer(allow_none=True)
    action = ma.fields.String()
    quote_request_id = ma.fields.Integer(allow_none=True)
    subject_hash = ma.fields.String(allow_none=True)
    detail = ma.fields.Dict(
        allow_none=True, metadata={"description": "A queue export: its filters and format."}
    )
    at = ma.fields.DateTime()


class AccessLogPageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(AccessLogEntrySchema))
