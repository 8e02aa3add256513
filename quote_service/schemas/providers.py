"""Providers: list filters, the one input schema (create and update bodies), output.

`ProviderCreateSchema` is what a provider is, wherever it comes from: the admin
API's bodies, a row of `flask providers import` and an entry of the catalog
file (`flask seed`). `ProviderUpdateSchema` is the same fields, each optional.
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma

from quote_service.errors import FieldErrors, flatten_webargs_messages
from quote_service.schemas.base import Slug, StrictSchema, Text, WholeNumber
from quote_service.schemas.fields import CountryCode, Email

# Bounded so that a typo is a 422, not an integer overflow in the database.
MAX_DAILY_CAPACITY = 10_000
MAX_WEIGHT = 1000
NON_EMPTY = ma.validate.Length(min=1, error="Give at least one.")


class JsonBoolean(ma.fields.Boolean):
    """JSON's true or false only: 0, 1 or "yes" are refused, as the OpenAPI says."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class ProviderQuerySchema(StrictSchema):
    destination = CountryCode(metadata={"description": "Destination code.", "example": "BE"})
    condition = Text(
        validate=ma.validate.Length(max=64),
        metadata={"description": "Condition slug: providers treating it.", "example": "stroke"},
    )
    active = ma.fields.Boolean(metadata={"description": "Only active (true) or inactive (false)."})


class ProviderUpdateSchema(StrictSchema):
    """Fields an admin may change; every one optional, the slug never."""

    name = Text(
        validate=ma.validate.Length(min=1, max=200),
        metadata={"example": "Brussels Neuro-Regeneration Centre"},
    )
    destination = CountryCode(
        metadata={"description": "An active destination of the catalog.", "example": "BE"}
    )
    conditions = ma.fields.List(
        Text(validate=Slug),
        validate=NON_EMPTY,
        metadata={
            "description": "Condition slugs, each offered at the destination.",
            "example": ["stroke", "stroke-rehabilitation"],
        },
    )
    languages = ma.fields.List(
        Text(validate=ma.validate.Length(min=1, max=8)),
        validate=NON_EMPTY,
        metadata={"description": "Language codes of the catalog.", "example": ["fr", "en"]},
    )
    contact_email = Email(
        validate=ma.validate.Length(max=320), metadata={"example": "intake@clinic.example"}
    )
    city = Text(
        allow_none=True,
        validate=ma.validate.Length(min=1, max=100),
        metadata={"description": "Where the clinic is, as patients are told.", "example": "Ghent"},
    )
    daily_capacity = WholeNumber(
        validate=ma.validate.Range(min=0, max=MAX_DAILY_CAPACITY),
        metadata={"description": "Requests it may be routed per UTC day.", "example": 20},
    )
    weight = WholeNumber(
        validate=ma.validate.Range(min=1, max=MAX_WEIGHT),
        metadata={"description": "Its share of the load among eligible providers.", "example": 2},
    )
    active = JsonBoolean(metadata={"description": "Inactive providers are never routed."})


class ProviderCreateSchema(ProviderUpdateSchema):
    """A new provider: every field required but `active`, which defaults to true."""

    slug = Text(
        required=True,
        validate=Slug,
        metadata={"description": "Lower-case letters, digits, -.", "example": "brussels-neuro"},
    )

    def on_bind_field(self, field_name: str, field_obj: ma.fields.Field) -> None:
        # The update schema's fields, made required here rather than listed twice.
        if field_name == "active":
            field_obj.load_default = True
        elif field_name == "city":
            field_obj.load_default = None
        else:
            field_obj.required = True


def load_partly(schema: ma.Schema, body: Any) -> tuple[dict[str, Any], FieldErrors]:
    """What `schema` makes of `body`: the fields it took, and its errors of the others.

    The providers service judges the fields taken against the catalog, so that
    one refusal names the schema's errors and the catalog's together.
    """
    try:
        return schema.load(body), {}
    except ma.ValidationError as error:
        valid = error.valid_data if isinstance(error.valid_data, dict) else {}
        fields, general = flatten_webargs_messages({"body": error.messages})
        if general:
            fields["_schema"] = general
        return valid, fields


class ConditionSlugSchema(ma.Schema):
    slug = ma.fields.String(required=True)


class ProviderOutSchema(ma.Schema):
    """A provider as the services give it (`ProviderFigures`): its row and what is counted."""

    id = ma.fields.Integer(required=True, attribute="provider.id")
    slug = ma.fields.String(required=True, attribute="provider.slug")
    name = ma.fields.String(required=True, attribute="provider.name")
    destination = ma.fields.String(
        required=True, attribute="provider.destination_code", metadata={"example": "BE"}
    )
    conditions = ma.fields.Pluck(
        ConditionSlugSchema, "slug", many=True, required=True, attribute="provider.conditions"
    )
    languages = ma.fields.List(ma.fields.String(), required=True, attribute="provider.languages")
    contact_email = ma.fields.String(required=True, attribute="provider.contact_email")
    city = ma.fields.String(allow_none=True, attribute="provider.city")
    daily_capacity = ma.fields.Integer(required=True, attribute="provider.daily_capacity")
    weight = ma.fields.Integer(required=True, attribute="provider.weight")
    active = ma.fields.Boolean(required=True, attribute="provider.active")
    sample = ma.fields.Boolean(
        required=True,
        attribute="provider.sample",
        metadata={"description": "Demo catalog data, not a real clinic."},
    )
    created_at = ma.fields.DateTime(required=True, attribute="provider.created_at")
    updated_at = ma.fields.DateTime(required=True, attribute="provider.updated_at")
    routed_today = ma.fields.Integer(
        required=True, metadata={"description": "Requests routed to it since midnight UTC."}
    )
    response_rate = ma.fields.Float(
        allow_none=True,
        metadata={
            "description": "Invitations answered in time / invitations with a known outcome "
            "(answered, declined or expired), last 90 days; null with none."
        },
    )
    median_response_hours = ma.fields.Float(
        allow_none=True,
        metadata={"description": "Median hours from invitation to answer, last 90 days."},
    )


class ProviderListSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(ProviderOutSchema), required=True)
