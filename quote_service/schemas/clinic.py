"""A clinic's side of an invitation: what it reads, the quote it sends, its decline."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Any

import marshmallow as ma
import pycountry

from quote_service.models import DECLINE_REASONS, EVIDENCE_LEVELS, InvitationStatus
from quote_service.schemas.base import FormSchema, StrictSchema, Text
from quote_service.schemas.intake import REQUIRED, earliest_local_today

NOTES_MAX_LENGTH = 2000
# Numeric(12, 2): ten digits before the point.
PRICE_LIMIT = 10_000_000_000
# ClinicalTrials.gov (NCT + 8 digits) and the EU CT number (CTIS, Regulation 536/2014:
# year-sequence-check-part, e.g. 2023-503456-12-00).
TRIAL_ID = re.compile(r"NCT\d{8}|\d{4}-\d{6}-\d{2}-\d{2}")
SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")


class Price(ma.fields.Decimal):
    """A price > 0 with at most two decimals: `1250`, `1250.5`, "1250.50"; never NaN or 1e400."""

    default_error_messages = {
        "invalid": "Enter an amount such as 12500 or 12500.50.",
        "special": "Enter an amount such as 12500 or 12500.50.",
        "range": "Enter an amount greater than 0 and below 10,000,000,000.",
    }

    def __init__(self, **kwargs: Any) -> None:
        # The range is checked here, not by a Range validator, so that the
        # OpenAPI gets numbers for its bounds (apispec writes a Decimal's as strings).
        metadata = {
            "minimum": 0,
            "exclusiveMinimum": True,
            "maximum": PRICE_LIMIT,
            "exclusiveMaximum": True,
            **kwargs.pop("metadata", {}),
        }
        super().__init__(places=None, metadata=metadata, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Decimal:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.make_error("invalid")
        if isinstance(value, str) and not re.fullmatch(r"\d{1,10}(\.\d{1,2})?", value.strip()):
            raise self.make_error("invalid")
        number = super()._deserialize(value, attr, data, **kwargs)
        if number != number.quantize(Decimal("0.01")):
            raise self.make_error("invalid")
        if not 0 < number < PRICE_LIMIT:
            raise self.make_error("range")
        return number.quantize(Decimal("0.01"))


class Currency(Text):
    """An ISO 4217 code (pycountry's table), any case in, upper case out."""

    default_error_messages = {"currency": "Use an ISO 4217 currency code, such as EUR or USD."}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs).upper()
        if not re.fullmatch(r"[A-Z]{3}", text) or pycountry.currencies.get(alpha_3=text) is None:
            raise self.make_error("currency")
        return text


class ItemSlugs(ma.fields.List):
    """A list of quote item slugs; a form sends one value per ticked checkbox."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            Text(validate=ma.validate.Regexp(SLUG, error="Not a quote item.")),
            validate=ma.validate.Length(max=50),
            **kwargs,
        )

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> list[str]:
        if isinstance(value, str):
            value = [value]
        return list(dict.fromkeys(super()._deserialize(value, attr, data, **kwargs)))


class QuoteInSchema(FormSchema):
    """A clinic's quote, as JSON or from the invitation page's form."""

    price_min = Price(
        required=True,
        error_messages=REQUIRED,
        metadata={"description": "The price, or the lower end of a range.", "example": 12500},
    )
    price_max = Price(
        metadata={"description": "The upper end of a range; absent for a fixed price."}
    )
    currency = Currency(required=True, error_messages=REQUIRED, metadata={"example": "EUR"})
    includes = ItemSlugs(
        load_default=list,
        metadata={"description": "Slugs of `quote_items` (GET /catalog) the price includes."},
    )
    excludes = ItemSlugs(
        load_default=list,
        metadata={"description": "Slugs of `quote_items` the price does not include."},
    )
    valid_until = ma.fields.Date(
        required=True, error_messages=REQUIRED, metadata={"example": "2027-03-31"}
    )
    earliest_start = ma.fields.Date(metadata={"example": "2027-02-15"})
    doctor = Text(validate=ma.validate.Length(max=200))
    evidence = Text(
        required=True,
        error_messages=REQUIRED,
        validate=ma.validate.OneOf(
            EVIDENCE_LEVELS, error="Choose approved, clinical-trial or experimental."
        ),
    )
    trial_id = Text(
        validate=ma.validate.Regexp(
            TRIAL_ID,
            error="Enter an NCT number (NCT01234567) or an EU CT number (2023-503456-12-00).",
        ),
        metadata={"description": "Required with `clinical-trial`."},
    )
    notes = Text(
        multiline=True,
        validate=ma.validate.Length(
            max=NOTES_MAX_LENGTH, error=f"Keep the notes under {NOTES_MAX_LENGTH} characters."
        ),
    )

    @ma.validates("valid_until")
    def valid_until_not_past(self, value: date, **kwargs: Any) -> None:
        if value < earliest_local_today():
            raise ma.ValidationError("This date is in the past.")

    @ma.validates_schema
    def consistent(self, data: dict[str, Any], **kwargs: Any) -> None:
        errors: dict[str, list[str]] = {}
        low, high = data.get("price_min"), data.get("price_max")
        if low is not None and high is not None and high < low:
            errors["price_max"] = ["Must not be below price_min."]
        if data.get("evidence") == "clinical-trial" and not data.get("trial_id"):
            errors["trial_id"] = ["Give the trial's registration number."]
        overlap = set(data.get("includes", ())) & set(data.get("excludes", ()))
        if overlap:
            errors["excludes"] = [f"Listed as included too: {', '.join(sorted(overlap))}."]
        if errors:
            raise ma.ValidationError(errors)


class DeclineInSchema(FormSchema):
    reason = Text(
        required=True,
        error_messages=REQUIRED,
        validate=ma.validate.OneOf(
            DECLINE_REASONS, error="Choose cannot-treat, needs-records, no-capacity or other."
        ),
    )
    note = Text(multiline=True, validate=ma.validate.Length(max=NOTES_MAX_LENGTH))


class InvitationOutSchema(StrictSchema):
    """What a clinic sees of a request: never the patient's name, email or phone."""

    reference = ma.fields.String(required=True)
    status = ma.fields.String(required=True, metadata={"enum": [str(s) for s in InvitationStatus]})
    respond_by = ma.fields.DateTime(required=True)
    condition = ma.fields.String(required=True)
    treatment = ma.fields.String(required=True)
    destination = ma.fields.String(required=True)
    preferred_language = ma.fields.String(required=True)
    patient_age = ma.fields.Integer(allow_none=True)
    travel_from = ma.fields.Date(allow_none=True)
    travel_to = ma.fields.Date(allow_none=True)
    message = ma.fields.String(allow_none=True)


class QuoteCreatedSchema(StrictSchema):
    quote_id = ma.fields.Integer(required=True)
    status = ma.fields.String(required=True, metadata={"example": "submitted"})


class InvitationAnsweredSchema(StrictSchema):
    reference = ma.fields.String(required=True)
    status = ma.fields.String(required=True, metadata={"example": "declined"})
