"""Base schema and the fields shared by our schemas."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import marshmallow as ma

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


class StrictSchema(ma.Schema):
    """Refuses unknown fields, and says so in the OpenAPI (`additionalProperties: false`)."""

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


class Text(ma.fields.String):
    """A trimmed string without control characters; single-line unless `multiline`."""

    default_error_messages = {
        "control": "Must not contain control characters.",
        "not_text": "Must be text (this holds a broken character).",
        "line_break": "Must be on a single line.",
    }

    def __init__(self, *, multiline: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.multiline = multiline

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs).strip()
        if not is_unicode_text(text):
            raise self.make_error("not_text")
        if "\x00" in text or _CONTROL.search(text):
            raise self.make_error("control")
        if not self.multiline and _LINE_BREAK.search(text):
            raise self.make_error("line_break")
        return text


class PersonName(Text):
    """A name as people see it: something visible, nothing that reorders the text."""

    default_error_messages = {
        "invisible": "Enter a name with visible letters.",
        "bidi": "Must not contain characters that reverse the direction of the text.",
    }

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if _BIDI_CONTROLS.search(text):
            raise self.make_error("bidi")
        # Zero-width spaces and joiners (format characters), marks and spaces
        # alone show nothing: a letter, digit, punctuation or symbol must be there.
        if not any(unicodedata.category(char)[0] in "LNPS" for char in text):
            raise self.make_error("invisible")
        return text


def is_unicode_text(text: str) -> bool:
    """False for a string holding a lone surrogate (JSON allows `"\ud800"`; UTF-8 does not)."""
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


class WholeNumber(ma.fields.Integer):
    """An integer from JSON, or a string of digits from a form; never 4.5 or true."""

    default_error_messages = {"invalid": "Must be a whole number."}

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


class Checkbox(ma.fields.Boolean):
    """A checkbox: `on`, `true`, `1`, `yes` (any case) or JSON true are true."""

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
