"""The one error envelope, described for the OpenAPI document."""

from __future__ import annotations

import marshmallow as ma


class ErrorBodySchema(ma.Schema):
    code = ma.fields.String(
        required=True, metadata={"description": "Machine-readable code, e.g. validation_error"}
    )
    message = ma.fields.String(required=True, metadata={"description": "Human-readable summary"})
    fields = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.List(ma.fields.String()),
        metadata={"description": "Messages per input field, to show next to each field"},
    )
    allowed = ma.fields.List(
        ma.fields.String(),
        metadata={"description": "Of an illegal workflow move: the statuses it may move to"},
    )


class ErrorEnvelopeSchema(ma.Schema):
    error = ma.fields.Nested(ErrorBodySchema, required=True)
