"""The public quote request form: input and response."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import marshmallow as ma

from quote_service.schemas.base import Checkbox, FormSchema, StrictSchema, Text, WholeNumber
from quote_service.schemas.fields import CountryCode, Email, normalise_phone

REQUIRED = {"required": "This field is required."}
MESSAGE_MAX_LENGTH = 5000
# How far ahead a travel window may be planned; beyond that it is a typo.
TRAVEL_HORIZON_DAYS = 5 * 365


def earliest_local_today(now: datetime | None = None) -> date:
    """The earliest calendar date anywhere on Earth right now (UTC-12).

    A patient far west of UTC may still be on "yesterday"; their today is
    not in the past.
    """
    now = now or datetime.now(UTC)
    return (now - timedelta(hours=12)).date()


class QuoteRequestInSchema(FormSchema):
    """A free quote request as a website form sends it."""

    full_name = Text(
        required=True,
        validate=ma.validate.Length(min=1, max=200),
        error_messages=REQUIRED,
        metadata={"description": "The patient's full name.", "example": "Jan Peeters"},
    )
    email = Email(
        required=True,
        validate=ma.validate.Length(max=320),
        error_messages=REQUIRED,
        metadata={"example": "jan.peeters@example.org"},
    )
    phone = Text(
        validate=ma.validate.Length(max=40),
        metadata={
            "description": "Any common format; stored in E.164. A number without a "
            "country code is read in the country of residence.",
            "example": "+32 470 12 34 56",
        },
    )
    country_of_residence = CountryCode(
        required=True,
        error_messages=REQUIRED,
        metadata={"description": "ISO 3166-1 alpha-2.", "example": "BE"},
    )
    preferred_language = Text(
        load_default="en",
        validate=ma.validate.Length(max=8),
        metadata={"description": "One of the catalog's languages.", "example": "nl"},
    )
    condition = Text(
        required=True,
        validate=ma.validate.Length(max=64),
        error_messages=REQUIRED,
        metadata={"description": "A condition slug from the catalog.", "example": "stroke"},
    )
    destination = CountryCode(
        required=True,
        error_messages=REQUIRED,
        metadata={"description": "A destination code from the catalog.", "example": "BE"},
    )
    treatment = Text(
        load_default="unsure",
        validate=ma.validate.Length(max=32),
        metadata={"description": "A treatment slug from the catalog.", "example": "msc"},
    )
    patient_age = WholeNumber(
        validate=ma.validate.Range(min=0, max=120, error="Enter an age from 0 to 120."),
        metadata={"example": 64},
    )
    travel_from = ma.fields.Date(metadata={"description": "ISO date.", "example": "2027-03-01"})
    travel_to = ma.fields.Date(metadata={"description": "ISO date.", "example": "2027-03-20"})
    budget_eur = WholeNumber(
        validate=ma.validate.Range(
            min=0, max=10_000_000, error="Enter a budget in whole euros, up to 10,000,000."
        ),
        metadata={"example": 25000},
    )
    message = Text(
        multiline=True,
        validate=ma.validate.Length(
            max=MESSAGE_MAX_LENGTH, error=f"Keep the message under {MESSAGE_MAX_LENGTH} characters."
        ),
        metadata={"description": "Medical history and questions, free text."},
    )
    consent_privacy = Checkbox(
        required=True,
        error_messages={"required": "You must agree to the privacy notice to send a request."},
        metadata={"description": "Must be true: consent to process health data."},
    )
    consent_marketing = Checkbox(load_default=False)
    website = ma.fields.Raw(
        metadata={"description": "Leave empty. (A field people never see; bots fill it.)"},
    )

    @ma.validates("consent_privacy")
    def consent_given(self, value: bool, **kwargs: Any) -> None:
        if value is not True:
            raise ma.ValidationError("You must agree to the privacy notice to send a request.")

    @ma.validates("travel_from")
    def travel_from_not_past(self, value: date, **kwargs: Any) -> None:
        check_travel_date(value)

    @ma.validates("travel_to")
    def travel_to_not_past(self, value: date, **kwargs: Any) -> None:
        check_travel_date(value)

    @ma.validates_schema(skip_on_field_errors=False)
    def travel_window_in_order(self, data: dict[str, Any], **kwargs: Any) -> None:
        start, end = data.get("travel_from"), data.get("travel_to")
        if start and end and start > end:
            raise ma.ValidationError("Must be on or after the start date.", "travel_to")

    @ma.validates_schema(skip_on_field_errors=False)
    def phone_is_valid(self, data: dict[str, Any], **kwargs: Any) -> None:
        # Checked here rather than on the field: a national number is read
        # in the country of residence, another field.
        if data.get("phone"):
            try:
                normalise_phone(data["phone"], data.get("country_of_residence"))
            except ma.ValidationError as error:
                raise ma.ValidationError(error.messages, "phone") from None

    @ma.post_load
    def normalise_phone_number(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        if data.get("phone"):
            data["phone"] = normalise_phone(data["phone"], data.get("country_of_residence"))
        return data


def check_travel_date(value: date) -> None:
    if value < earliest_local_today():
        raise ma.ValidationError("Must not be in the past.")
    if value > earliest_local_today() + timedelta(days=TRAVEL_HORIZON_DAYS):
        raise ma.ValidationError("Must be within the next five years.")


class QuoteRequestCreatedSchema(StrictSchema):
    reference = ma.fields.String(required=True, metadata={"example": "QR-7K4M2P9X"})
    status = ma.fields.String(required=True, metadata={"example": "received"})
    created_at = ma.fields.DateTime(required=True)
