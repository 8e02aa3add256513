"""Fields that normalise what people type: email, country, phone."""

from __future__ import annotations

from typing import Any

import email_validator
import marshmallow as ma
import phonenumbers
import pycountry

from quote_service.schemas.base import Text

# RFC 5321: a mail server may refuse a local part longer than this, in octets.
LOCAL_PART_MAX_OCTETS = 64


class Email(Text):
    """An email address, checked for syntax and normalised by email-validator.

    International addresses are accepted: the domain is sent in its ASCII
    (IDNA) form, and a local part that is not ASCII with SMTPUTF8 (see
    `quote_service.addresses`).
    """

    default_error_messages = {
        "invalid_email": "Enter a valid email address.",
        "local_part_too_long": "The part before the @ is too long: at most 64 characters "
        "(fewer with accented letters).",
    }

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            # No DNS look-up: the request path must not wait on the network.
            result = email_validator.validate_email(text, check_deliverability=False)
        except email_validator.EmailNotValidError as error:
            raise ma.ValidationError(f"Enter a valid email address: {error}") from None
        if len(result.local_part.encode("utf-8")) > LOCAL_PART_MAX_OCTETS:
            raise self.make_error("local_part_too_long")
        return result.normalized


class CountryCode(Text):
    """An ISO 3166-1 alpha-2 country code, any case in, upper case out."""

    default_error_messages = {
        "invalid_country": "Use a two-letter ISO 3166-1 country code, such as BE or GB."
    }

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs).upper()
        if len(text) != 2 or pycountry.countries.get(alpha_2=text) is None:
            raise self.make_error("invalid_country")
        return text


def normalise_phone(raw: str, region: str | None) -> str:
    """Return the number in E.164, reading a national number in the patient's country."""
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        raise ma.ValidationError(
            "Enter a phone number with its country code, such as +32 2 123 45 67."
        ) from None
    if not phonenumbers.is_valid_number(number):
        raise ma.ValidationError("This phone number is not valid.")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
