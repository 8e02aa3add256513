"""The public catalog (response and query) and the catalog data file (seed input)."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask_babel import lazy_gettext as _l

from quote_service.schemas.base import Slug, StrictSchema, Text
from quote_service.schemas.providers import ProviderCreateSchema


class CatalogQuerySchema(StrictSchema):
    lang = Text(
        load_default="en",
        validate=ma.validate.Length(
            min=2, max=16, error=_l("Use a language code such as fr, FR or fr-BE.")
        ),
        metadata={"description": "Language of the texts, e.g. fr or fr-BE. Default en."},
    )


class NamedSchema(ma.Schema):
    slug = ma.fields.String(required=True)
    name = ma.fields.String(required=True)


class DestinationOutSchema(ma.Schema):
    code = ma.fields.String(required=True, metadata={"example": "BE"})
    name = ma.fields.String(required=True, metadata={"example": "Belgium"})
    conditions = ma.fields.List(ma.fields.String(), required=True)


class ConsentOutSchema(ma.Schema):
    version = ma.fields.Integer(required=True)
    language = ma.fields.String(required=True)
    text = ma.fields.String(required=True)


class ScopeSchema(ma.Schema):
    destination = ma.fields.String(allow_none=True)
    condition = ma.fields.String(allow_none=True)
    context = ma.fields.String(
        allow_none=True,
        metadata={"description": 'null: every message in scope; "quote": quote emails only.'},
    )


class DisclaimerOutSchema(ma.Schema):
    key = ma.fields.String(required=True, metadata={"example": "not-medical-advice"})
    version = ma.fields.Integer(required=True)
    required = ma.fields.Boolean(required=True)
    language = ma.fields.String(required=True)
    scope = ma.fields.Function(
        lambda d: ScopeSchema().dump(
            {"destination": d.destination_code, "condition": d.condition_slug, "context": d.context}
        ),
        required=True,
        metadata={"type": "object"},
    )
    text = ma.fields.String(required=True)


class CountrySchema(ma.Schema):
    code = ma.fields.String(required=True, metadata={"example": "BE"})
    name = ma.fields.String(required=True, metadata={"example": "Belgique"})


class OrganisationSchema(ma.Schema):
    name = ma.fields.String(required=True, metadata={"example": "Example Facilitator (sample)"})
    address = ma.fields.String(required=True)
    contact_email = ma.fields.String(required=True)
    privacy_policy_url = ma.fields.String(required=True)


class CatalogSchema(ma.Schema):
    destinations = ma.fields.List(ma.fields.Nested(DestinationOutSchema))
    conditions = ma.fields.List(ma.fields.Nested(NamedSchema))
    treatments = ma.fields.List(ma.fields.Nested(NamedSchema))
    quote_items = ma.fields.List(
        ma.fields.Nested(NamedSchema),
        metadata={"description": "What a clinic's quote can include or exclude."},
    )
    languages = ma.fields.List(ma.fields.String())
    countries = ma.fields.List(
        ma.fields.Nested(CountrySchema),
        metadata={
            "description": "Every ISO 3166-1 country, named in the catalog's language and "
            "sorted by that name: the choices of `country_of_residence`."
        },
    )
    first_response_hours = ma.fields.Integer(
        metadata={"description": "How soon a coordinator usually answers a request."}
    )
    organisation = ma.fields.Nested(
        OrganisationSchema,
        metadata={
            "description": "Who patients deal with: ORGANISATION_NAME, ORGANISATION_ADDRESS, "
            "CONTACT_EMAIL and PRIVACY_POLICY_URL, for a form to show."
        },
    )
    consent = ma.fields.Nested(ConsentOutSchema, allow_none=True)
    disclaimers = ma.fields.List(ma.fields.Nested(DisclaimerOutSchema))


# --- The catalog data file (`flask seed --file`) ---------------------------

Names = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String(), required=True)


class FileNamedSchema(StrictSchema):
    slug = ma.fields.String(required=True, validate=Slug)
    names = Names


class FileDestinationSchema(StrictSchema):
    code = ma.fields.String(required=True, validate=ma.validate.Regexp(r"^[A-Z]{2}$"))
    names = Names
    conditions = ma.fields.List(ma.fields.String(), required=True)


class FileScopeSchema(StrictSchema):
    destination = ma.fields.String(allow_none=True, load_default=None)
    condition = ma.fields.String(allow_none=True, load_default=None)
    context = ma.fields.String(
        allow_none=True, load_default=None, validate=ma.validate.OneOf(["quote"])
    )


class FileDisclaimerSchema(StrictSchema):
    key = ma.fields.String(required=True, validate=Slug)
    required = ma.fields.Boolean(load_default=True)
    scope = ma.fields.Nested(FileScopeSchema, load_default=lambda: {})
    texts = Names


class CatalogFileSchema(StrictSchema):
    sample = ma.fields.Boolean(load_default=False)
    languages = ma.fields.List(ma.fields.String(), required=True)
    treatments = ma.fields.List(ma.fields.Nested(FileNamedSchema), required=True)
    conditions = ma.fields.List(ma.fields.Nested(FileNamedSchema), required=True)
    destinations = ma.fields.List(ma.fields.Nested(FileDestinationSchema), required=True)
    # Checked as the admin API checks a new provider; the seed then checks each
    # against the catalog just loaded, as the API does (services.providers.save).
    providers = ma.fields.List(ma.fields.Nested(ProviderCreateSchema), load_default=list)
    consent = Names
    disclaimers = ma.fields.List(ma.fields.Nested(FileDisclaimerSchema), required=True)
    quote_items = ma.fields.List(ma.fields.Nested(FileNamedSchema), load_default=list)

    @ma.validates_schema
    def references_exist(self, data: dict[str, Any], **kwargs: Any) -> None:
        """Every slug, code and language a row points at is defined in the file."""
        languages = set(data["languages"])
        conditions = {c["slug"] for c in data["conditions"]}
        destinations = {d["code"] for d in data["destinations"]}
        errors: list[str] = []
        for d in data["destinations"]:
            errors += [
                f"destination {d['code']}: unknown condition {c}"
                for c in d["conditions"]
                if c not in conditions
            ]
        for p in data["providers"]:
            if p["destination"] not in destinations:
                errors.append(f"provider {p['slug']}: unknown destination {p['destination']}")
            errors += [
                f"provider {p['slug']}: unknown condition {c}"
                for c in p["conditions"]
                if c not in conditions
            ]
            errors += [
                f"provider {p['slug']}: unknown language {lang}"
                for lang in p["languages"]
                if lang not in languages
            ]
        for d in data["disclaimers"]:
            scope = d["scope"]
            if scope.get("destination") not in (None, *destinations):
                errors.append(f"disclaimer {d['key']}: unknown destination {scope['destination']}")
            if scope.get("condition") not in (None, *conditions):
                errors.append(f"disclaimer {d['key']}: unknown condition {scope['condition']}")
            errors += [
                f"disclaimer {d['key']}: unknown language {lang}"
                for lang in d["texts"]
                if lang not in languages
            ]
        errors += [
            f"consent: unknown language {lang}" for lang in data["consent"] if lang not in languages
        ]
        if errors:
            raise ma.ValidationError(errors)
