"""Reading the console's form posts.

Sign-in is a WTForms form (Flask-WTF). Every action on a request is read
with the same marshmallow schema as its JSON endpoint, so a note, a move or
a version is checked by the same rules whichever way it arrives. CSRF is
checked for every state-changing console request in one place
(`quote_service.console.pages`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import marshmallow as ma
from flask import request
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Length

from quote_service.errors import FieldErrors, flatten_webargs_messages

DIGITS = re.compile(r"[0-9]{1,9}")


def whole_number(value: str) -> int | None:
    """A posted id or version as a number; None unless it is 1-9 ASCII digits."""
    return int(value) if DIGITS.fullmatch(value) else None


class SignInForm(FlaskForm):
    class Meta:
        csrf = False  # checked for the whole console before any view runs

    email = EmailField("Email", validators=[DataRequired("Enter your email."), Length(max=320)])
    password = PasswordField(
        "Password", validators=[DataRequired("Enter your password."), Length(max=1024)]
    )


def read_form(
    schema: ma.Schema, names: Iterable[str], integers: Iterable[str] = ()
) -> tuple[dict[str, Any] | None, FieldErrors]:
    """The posted fields `names`, loaded by `schema`: (data, {}) or (None, field errors).

    Empty inputs count as not given; `integers` are turned from digits into
    numbers first (the API's schemas take JSON numbers only).
    """
    data: dict[str, Any] = {}
    errors: FieldErrors = {}
    integer_names = set(integers)
    for name in names:
        value = request.form.get(name, "").strip()
        if value == "":
            continue
        if name in integer_names:
            number = whole_number(value)
            if number is None:
                errors[name] = ["Must be a whole number."]
                continue
            data[name] = number
        else:
            data[name] = value
    if errors:
        return None, errors
    return load_body(schema, data)


def load_body(schema: ma.Schema, body: dict[str, Any]) -> tuple[dict[str, Any] | None, FieldErrors]:
    """`body` loaded by `schema`: (data, {}) or (None, field errors)."""
    try:
        return schema.load(body), {}
    except ma.ValidationError as error:
        fields, general = flatten_webargs_messages({"form": error.messages})
        if general:
            fields.setdefault("form", []).extend(general)
        return None, fields
