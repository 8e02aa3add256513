"""The public quote request form: input and response."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import marshmallow as ma
from flask import current_app, has_request_context, request
from flask_babel import lazy_gettext as _l

from quote_service.schemas.base import (
    Anything,
    Checkbox,
    FormSchema,
    PersonName,
    StrictSchema,
    Text,
    WholeNumber,
    max_length,
)
from quote_service.schemas.fields import CountryCode, Email, normalise_phone
from quote_service.schemas.localised import Amount, LocalDate

REQUIRED = {"required": _l("This field is required.")}
CONSENT_REQUIRED = _l("You must agree to the privacy notice to send a request.")
MESSAGE_MAX_LENGTH = 5000
# How far ahead a travel window may be planned; beyond that it is a typo.
TRAVEL_HORIZON_DAYS = 5 * 365
REDIRECT_MAX_LENGTH = 2000
DEFAULT_PORTS = {"http": 80, "https": 443}


def earliest_local_today(now: datetime | None = None) -> date:
    """The earliest calendar date anywhere on Earth right now (UTC-12).

    A patient far west of UTC may still be on "yesterday"; their today is
    not in the past.
    """
    now = now or datetime.now(UTC)
    return (now - timedelta(hours=12)).date()


class QuoteRequestInSchema(FormSchema):
    """A free quote request as a website form sends it."""

    full_name = PersonName(
        required=True,
        validate=max_length(200),
        error_messages=REQUIRED,
        metadata={"description": "The patient's full name.", "example": "Jan Peeters"},
    )
    email = Email(
        required=True,
        validate=max_length(320),
        error_messages=REQUIRED,
        metadata={"example": "jan.peeters@example.org"},
    )
    phone = Text(
        validate=max_length(40),
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
        validate=max_length(8),
        metadata={"description": "One of the catalog's languages.", "example": "nl"},
    )
    condition = Text(
        required=True,
        validate=max_length(64),
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
        validate=max_length(32),
        metadata={"description": "A treatment slug from the catalog.", "example": "msc"},
    )
    patient_age = WholeNumber(
        validate=ma.validate.Range(min=0, max=120, error=_l("Enter an age from 0 to 120.")),
        metadata={"example": 64},
    )
    travel_from = LocalDate(
        metadata={
            "description": "ISO date. A form may send the date as people write it in the "
            "body's language (`Content-Language`, else the request's), e.g. 27.03.2027 in de.",
            "example": "2027-03-01",
        }
    )
    travel_to = LocalDate(
        metadata={"description": "ISO date, as travel_from.", "example": "2027-03-20"}
    )
    budget_eur = Amount(
        validate=ma.validate.Range(
            min=0, max=10_000_000, error=_l("Enter a budget in whole euros, up to 10,000,000.")
        ),
        metadata={
            "description": "Whole euros. A string is read in the body's language "
            "(`Content-Language`, else the request's): 30.000 in de, 30 000 in fr, "
            "30,000 in en.",
            "example": 25000,
        },
    )
    message = Text(
        multiline=True,
        validate=ma.validate.Length(
            max=MESSAGE_MAX_LENGTH, error=_l("Keep the message under {max} characters.")
        ),
        metadata={"description": "Medical history and questions, free text."},
    )
    consent_privacy = Checkbox(
        required=True,
        error_messages={"required": CONSENT_REQUIRED},
        metadata={"description": "Must be true: consent to process health data."},
    )
    consent_marketing = Checkbox(load_default=False)
    website = Anything(
        metadata={"description": "Leave empty. (A field people never see; bots fill it.)"},
    )
    redirect_to = Text(
        validate=max_length(REDIRECT_MAX_LENGTH),
        metadata={
            "description": "HTML form posts only (a JSON body may not carry it); not stored. "
            "A page of the website to send the browser to with a 303 See Other: "
            "`?reference=QR-...` appended on success, "
            "`?error=validation_error&fields=email,phone` (field names only) on invalid "
            "fields, `?error=<code>` on other errors. Its origin must be one of the "
            "service's CORS_ORIGINS.",
            "example": "https://www.example.org/free-quote/thank-you",
        },
    )

    @ma.validates("consent_privacy")
    def consent_given(self, value: bool, **kwargs: Any) -> None:
        if value is not True:
            raise ma.ValidationError([CONSENT_REQUIRED])

    @ma.validates("travel_from")
    def travel_from_not_past(self, value: date, **kwargs: Any) -> None:
        check_travel_date(value)

    @ma.validates("travel_to")
    def travel_to_not_past(self, value: date, **kwargs: Any) -> None:
        check_travel_date(value)

    @ma.validates("redirect_to")
    def redirect_to_allowed(self, value: str, **kwargs: Any) -> None:
        if has_request_context() and request.is_json:
            return  # refused as an unknown field below
        if not allowed_redirect(value, current_app.config["CORS_ORIGINS"]):
            raise ma.ValidationError(
                [_l("Must be an http(s) address on one of the websites this service serves.")]
            )

    @ma.validates_schema(pass_original=True, skip_on_field_errors=False)
    def redirect_only_from_forms(
        self, data: dict[str, Any], original_data: Any, **kwargs: Any
    ) -> None:
        # A JSON client reads the answer itself; a redirect is for browsers without scripts.
        if (
            isinstance(original_data, Mapping)
            and "redirect_to" in original_data
            and has_request_context()
            and request.is_json
        ):
            raise ma.ValidationError([_l("Unknown field.")], "redirect_to")

    @ma.validates_schema(skip_on_field_errors=False)
    def travel_window_in_order(self, data: dict[str, Any], **kwargs: Any) -> None:
        try:
            check_travel_window(data.get("travel_from"), data.get("travel_to"))
        except ma.ValidationError as error:
            raise ma.ValidationError(error.messages, "travel_to") from None

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


def check_travel_window(start: date | None, end: date | None) -> None:
    """The end of a travel window is not before its start (the message is the end's)."""
    if start and end and start > end:
        raise ma.ValidationError([_l("Must be on or after the start date.")])


def check_travel_date(value: date | None) -> None:
    if value is None:
        return  # a coordinator's correction may clear a date (schemas/queue.py)
    if value < earliest_local_today():
        raise ma.ValidationError([_l("Must not be in the past.")])
    if value > earliest_local_today() + timedelta(days=TRAVEL_HORIZON_DAYS):
        raise ma.ValidationError([_l("Must be within the next five years.")])


def origin_of(url: str) -> str | None:
    """`scheme://host[:port]` of an absolute http(s) URL, default port left out; else None.

    Anything a browser might read differently from us (backslashes, spaces,
    user info before the host) is refused rather than interpreted.
    """
    if "\\" in url or any(char.isspace() for char in url):
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname or "@" in parts.netloc:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{scheme}://{host}" + ("" if port in (None, DEFAULT_PORTS[scheme]) else f":{port}")


def allowed_redirect(url: str, origins: Iterable[str]) -> bool:
    """Whether `url` is on one of `origins` (never a wildcard: that would be an open redirect)."""
    origin = origin_of(url)
    return origin is not None and origin in {origin_of(allowed) for allowed in origins}


class QuoteRequestCreatedSchema(StrictSchema):
    reference = ma.fields.String(required=True, metadata={"example": "QR-7K4M2P9X"})
    status = ma.fields.String(required=True, metadata={"example": "received"})
    created_at = ma.fields.DateTime(required=True)
    urgent = ma.fields.Boolean(
        required=True,
        metadata={
            "description": "True when the message may describe an emergency happening now: "
            "show `advice` first. A safety notice, never a diagnosis."
        },
    )
    advice = ma.fields.String(
        metadata={
            "description": "Only when urgent: what to tell the patient at once, in their "
            'language ("This may be an emergency... call 112").'
        }
    )
    emergency_number = ma.fields.String(
        metadata={
            "description": "Only when urgent: the emergency number of the country of "
            "residence (112 when unknown).",
            "example": "112",
        }
    )
