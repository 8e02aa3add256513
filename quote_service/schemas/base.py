"""Base schema and the fields shared by our schemas."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import marshmallow as ma
from flask_babel import lazy_gettext as _l

# Control characters never belong in a form field. Tabs and newlines are
# allowed only in multi-line text; NUL is refused everywhere (PostgreSQL
# cannot store it and it has no meaning in a name or a message).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_LINE_BREAK = re.compile(r"[\r\n\t\u2028\u2029\x85]")
# Bidirectional embeddings, overrides and isolates: they reorder what follows,
# so "Dear ...", the queue and every email would show a name other than the one
# typed (U+202E turns "Anna\u202eexe.txt" around). No name needs them.
_BIDI_CONTROLS = re.compile(r"[\u202a-\u202e\u2066-\u2069]")
# Whole numbers as people type them: ASCII digits. `\d` would also take
# Arabic-Indic and every other script's digits, which int() reads silently.
_ASCII_INTEGER = re.compile(r"[+-]?[0-9]{1,12}", re.ASCII)


# marshmallow's own messages, as lazy strings: public schemas answer in the
# language of the request (quote_service.i18n). Every field class of a public
# schema starts from these.
FIELD_MESSAGES = {
    "required": _l("This field is required."),
    "null": _l("This field cannot be empty."),
    "validator_failed": _l("This value is not valid."),
}


class ListedMessages:
    """Field messages always as a list, as marshmallow gives plain strings.

    marshmallow wraps a message in a list only when it is a `str`; a lazy
    string would otherwise stand alone where callers expect a list.
    """

    def make_error(self, key: str, **kwargs: Any) -> ma.ValidationError:
        error = super().make_error(key, **kwargs)  # type: ignore[misc]
        if not isinstance(error.messages, list | dict):
            error.messages = [error.messages]
        return error


# A catalog entry's or a provider's slug.
Slug = ma.validate.Regexp(r"^[a-z0-9][a-z0-9-]{0,63}$", error="Use lower-case letters, digits, -.")


def max_length(maximum: int) -> ma.validate.Length:
    return ma.validate.Length(max=maximum, error=_l("Use at most {max} characters."))


class StrictSchema(ma.Schema):
    """Refuses unknown fields, and says so in the OpenAPI (`additionalProperties: false`)."""

    error_messages = {
        "unknown": _l("Unknown field."),
        "type": _l("Send the fields as one JSON object or as a form."),
    }

    class Meta:
        unknown = ma.RAISE


class FormSchema(StrictSchema):
    """A body that may come from a plain HTML form as well as from JSON.

    Strings are trimmed and an empty string counts as "not given", which is
    what an untouched optional input of an HTML form sends.
    """

    @ma.pre_load
    def drop_blank_values(self, data: Any, **kwargs: Any) -> Any:
        if not isinstance(data, Mapping):
            return data  # marshmallow reports "Invalid input type."
        cleaned = {}
        for key in data:
            value = data[key]
            if isinstance(value, str):
                value = value.strip()
                if value == "":
                    continue
            cleaned[key] = value
        return cleaned


class Text(ListedMessages, ma.fields.String):
    """A trimmed string without control characters; single-line unless `multiline`."""

    default_error_messages = {
        **FIELD_MESSAGES,
        "invalid": _l("Enter text."),
        "invalid_utf8": _l("Enter text."),
        "control": _l("Must not contain control characters."),
        "line_break": _l("Must be on a single line."),
    }

    def __init__(self, *, multiline: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.multiline = multiline

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs).strip()
        if not is_unicode_text(text):
            raise self.make_error("invalid_utf8")
        if "\x00" in text or _CONTROL.search(text):
            raise self.make_error("control")
        if not self.multiline and _LINE_BREAK.search(text):
            raise self.make_error("line_break")
        return text


class PersonName(Text):
    """A name as people see it: something visible, nothing that reorders the text.

    The refusals reuse Text's messages, already in every language: a name of
    invisible characters is no name ("required"), and bidirectional controls
    are control characters of a kind (Unicode's format controls).
    """

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if _BIDI_CONTROLS.search(text):
            raise self.make_error("control")
        # Zero-width spaces and joiners (format characters), marks and spaces
        # alone show nothing: a letter, digit, punctuation or symbol must be there.
        if not any(unicodedata.category(char)[0] in "LNPS" for char in text):
            raise self.make_error("required")
        return text


def is_unicode_text(text: str) -> bool:
    """False for a string holding a lone surrogate (JSON allows `"\\ud800"`; UTF-8 does not)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class UTCDateTime(ma.fields.AwareDateTime):
    """A date and time with an offset (UTC when it has none), turned into UTC.

    `9999-12-31T23:59:59-14:00` is a valid ISO 8601 time whose UTC falls past
    the year 9999 that Python's datetime ends at: refused, not an OverflowError.
    """

    default_error_messages = {"out_of_range": "Enter a date and time between the years 1 and 9999."}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(default_timezone=UTC, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        moment = super()._deserialize(value, attr, data, **kwargs)
        try:
            return moment.astimezone(UTC)
        except OverflowError:
            raise self.make_error("out_of_range") from None


class WholeNumber(ListedMessages, ma.fields.Integer):
    """An integer from JSON, or a string of digits from a form; never 4.5 or true."""

    default_error_messages = {
        **FIELD_MESSAGES,
        "invalid": _l("Must be a whole number."),
        "too_large": _l("This number is too large."),
    }

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if isinstance(value, bool):
            raise self.make_error("invalid")
        if isinstance(value, str):
            if not _ASCII_INTEGER.fullmatch(value.strip()):
                raise self.make_error("invalid")
            return int(value)
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer() and abs(value) < 1e12:
            return int(value)
        raise self.make_error("invalid")


class Checkbox(ListedMessages, ma.fields.Boolean):
    """A checkbox: `on`, `true`, `1`, `yes` (any case) or JSON true are true."""

    default_error_messages = {**FIELD_MESSAGES, "invalid": _l("Tick the box, or leave it empty.")}

    # 1 == True in Python, so the integers cover the JSON booleans too.
    truthy = {"on", "true", "1", "yes", 1}
    falsy = {"off", "false", "0", "no", 0}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if isinstance(value, str):
            value = value.strip().lower()
        try:
            if value in self.truthy:
                return True
            if value in self.falsy:
                return False
        except TypeError:  # unhashable input such as a list
            pass
        raise self.make_error("invalid")


class Anything(ListedMessages, ma.fields.Raw):
    """Any value (the honeypot), with messages in the request's language."""

    default_error_messages = FIELD_MESSAGES
