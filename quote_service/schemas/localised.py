"""Fields that read numbers and dates the way people write them in their language.

A JSON client sends numbers and ISO dates, which are always accepted. People
typing into a form write "30.000" (de), "30 000" (fr) or "30,000" (en), and
a date as 27.03.2027 where the browser has no date picker; these are read
with Babel in the language of the body (`Content-Language`, else the
request's language: see `quote_service.i18n.input_locale`).
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import marshmallow as ma
from babel import Locale
from babel.dates import format_date, get_date_format, parse_date
from babel.numbers import (
    NumberFormatError,
    format_decimal,
    get_decimal_symbol,
    get_group_symbol,
    parse_decimal,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from quote_service.i18n import input_locale
from quote_service.schemas.base import FIELD_MESSAGES, ListedMessages, WholeNumber

# Spaces of every kind only ever group digits; so do apostrophes (1'000) and a
# euro sign is harmless. They are dropped before Babel reads the number.
_IGNORED = re.compile(r"[\s\u00a0\u202f'\u2019€]|eur\b", re.IGNORECASE)
_PLAIN = re.compile(r"[+-]?\d{1,12}")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
EXAMPLE_AMOUNT = 30000


def parse_whole_number(text: str, locale: Locale) -> int | None:
    """The whole number `text` writes in `locale`, or None when it is not one.

    A decimal part is allowed only when it is zero cents ("30.000,00" in de);
    "30,000" in de (thirty, to three decimals) and "30.000" in en are refused
    rather than guessed.
    """
    cleaned = _IGNORED.sub("", text)
    if _PLAIN.fullmatch(cleaned):
        return int(cleaned)
    decimal_symbol = get_decimal_symbol(locale)
    group_symbol = get_group_symbol(locale)
    whole, separator, fraction = cleaned.partition(decimal_symbol)
    if separator and not re.fullmatch(r"0{1,2}", fraction):
        return None
    allowed = set("0123456789") | ({group_symbol} if group_symbol.strip() else set())
    if not whole or not set(whole) <= allowed or len(whole) > 16:
        return None
    try:
        number = parse_decimal(whole, locale=locale, strict=True)
    except NumberFormatError:
        return None
    if number != number.to_integral_value():
        return None
    return int(number)


class Amount(WholeNumber):
    """Whole euros: a JSON integer, or what a person typed, in their language's format."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if isinstance(value, str):
            locale = input_locale()
            number = parse_whole_number(value, locale)
            if number is None:
                example = format_decimal(EXAMPLE_AMOUNT, locale=locale)
                raise ma.ValidationError(
                    _("Enter whole euros, such as %(example)s.", example=example)
                )
            return number
        return super()._deserialize(value, attr, data, **kwargs)


def date_pattern(locale: Locale) -> str:
    """The locale's short numeric date pattern with a four-digit year (dd.MM.y in de)."""
    return re.sub(r"y+", "y", get_date_format("short", locale=locale).pattern)


def example_date(locale: Locale) -> str:
    """A date written the way `locale` writes dates, for hints and messages."""
    return format_date(date(date.today().year + 1, 3, 27), date_pattern(locale), locale=locale)


class LocalDate(ListedMessages, ma.fields.Date):
    """An ISO date, or a date written in the body's language (a text fallback of a date input)."""

    default_error_messages = {**FIELD_MESSAGES, "invalid": _l("Enter a real date.")}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> date:
        if not isinstance(value, str):
            raise self.make_error("invalid")
        text = value.strip()
        if _ISO_DATE.fullmatch(text):
            try:
                return date.fromisoformat(text)
            except ValueError:
                pass
        else:
            locale = input_locale()
            try:
                return parse_date(text, locale=locale, format="short")
            except (ValueError, IndexError, TypeError):
                pass
        example = example_date(input_locale())
        raise ma.ValidationError(_("Enter a real date, such as %(example)s.", example=example))
