"""Fields that normalise what people type: email, country, phone."""

from __future__ import annotations

import re
from typing import Any

import email_validator
import marshmallow as ma
import phonenumbers
import pycountry
from flask_babel import lazy_gettext as _l

from quote_service.models import MAX_ID
from quote_service.schemas.base import Text

# RFC 5321: a mail server may refuse a local part longer than this, in octets.
LOCAL_PART_MAX_OCTETS = 64
# An id names a row of a 32-bit id column: a larger one is a 422, never a 500.
ID_RANGE = ma.validate.Range(min=1, max=MAX_ID, error="Not a valid id.")

# email-validator explains a refusal in English, in some fifty wordings. Each is
# put into one of these, which the catalogs translate; the first pattern that
# matches wins, and anything unforeseen gets the general message.
EMAIL_PROBLEMS: tuple[tuple[re.Pattern[str], Any], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), message)
    for pattern, message in (
        (
            r"must have an @-sign|at-sign|commercial at",
            _l("Enter a valid email address: it needs one @ sign, as in name@example.org."),
        ),
        (
            r"something before the @-sign",
            _l("Enter a valid email address: something is missing before the @ sign."),
        ),
        (
            r"something after the @-sign",
            _l("Enter a valid email address: something is missing after the @ sign."),
        ),
        (r"too long|so many characters", _l("Enter a valid email address: this one is too long.")),
        (
            r"two periods in a row|(start|end) with a (period|hyphen)|period and a hyphen",
            _l("Enter a valid email address: check its periods and hyphens."),
        ),
        (
            r"should have a period|top-level domain",
            _l(
                "Enter a valid email address: after the @ comes a domain name, such as example.org."
            ),
        ),
        (
            r"special-use or reserved",
            _l("Enter a valid email address: this domain name receives no email."),
        ),
        (
            r"display name|angle bracket|anything after the email address|quot",
            _l("Enter the email address alone, without a name, quotes or brackets."),
        ),
        (
            r"bracket",
            _l("Enter a valid email address: use a domain name after the @, not an IP address."),
        ),
        (
            r"characters|character|not valid ascii|not supported",
            _l("Enter a valid email address: it contains characters that are not allowed."),
        ),
        (
            r"idna|punycode|two dashes|normaliz|after the @-sign is (not valid|invalid)",
            _l("Enter a valid email address: the part after the @ is not a valid domain name."),
        ),
    )
)
EMAIL_GENERAL = _l("Enter a valid email address, such as name@example.org.")


def email_problem(error: email_validator.EmailNotValidError) -> Any:
    """Our (translated) message for one of email-validator's refusals."""
    text = str(error)
    for pattern, message in EMAIL_PROBLEMS:
        if pattern.search(text):
            return message
    return EMAIL_GENERAL


class Email(Text):
    """An email address, checked for syntax and normalised by email-validator.

    International addresses are accepted: the domain is sent in its ASCII
    (IDNA) form, and a local part that is not ASCII with SMTPUTF8 (see
    `quote_service.addresses`).
    """

    default_error_messages = {**Text.default_error_messages, "invalid_email": EMAIL_GENERAL}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            # No DNS look-up: the request path must not wait on the network.
            result = email_validator.validate_email(text, check_deliverability=False)
        except email_validator.EmailNotValidError as error:
            raise ma.ValidationError([email_problem(error)]) from None
        if len(result.local_part.encode("utf-8")) > LOCAL_PART_MAX_OCTETS:
            # email-validator's own refusal in strict mode, counted in octets, not characters.
            too_long = email_validator.EmailNotValidError(
                "The email address is too long before the @-sign."
            )
            raise ma.ValidationError([email_problem(too_long)])
        return result.normalized


class CountryCode(Text):
    """An ISO 3166-1 alpha-2 country code, any case in, upper case out."""

    default_error_messages = {
        **Text.default_error_messages,
        "invalid_country": _l(
            "Choose a country from the list (a two-letter ISO code, such as BE)."
        ),
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
            [_l("Enter a phone number with its country code, such as +32 2 123 45 67.")]
        ) from None
    if not phonenumbers.is_valid_number(number):
        raise ma.ValidationError([_l("This phone number is not valid.")])
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
