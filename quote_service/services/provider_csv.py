"""Providers as CSV: the export operators review and the import that applies it."""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterable
from typing import Any

import marshmallow as ma
from sqlalchemy.exc import IntegrityError

from quote_service.errors import InvalidFields
from quote_service.extensions import db
from quote_service.models import Condition, Provider, utcnow
from quote_service.schemas.providers import ProviderCreateSchema
from quote_service.services import providers

log = logging.getLogger(__name__)

PROVIDER_COLUMNS = (
    "slug",
    "name",
    "destination",
    "conditions",
    "languages",
    "contact_email",
    "daily_capacity",
    "weight",
    "active",
)
LIST_SEPARATOR = ";"


class ProviderFileError(ValueError):
    """A providers CSV that cannot be imported; the message lists every problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("The file was not imported:\n" + "\n".join(problems))
        self.problems = problems


def providers_csv(items: Iterable[dict[str, Any]]) -> str:
    """Providers, as `providers.describe` gives them, as CSV text."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(PROVIDER_COLUMNS)
    for item in items:
        writer.writerow(
            [
                item["slug"],
                item["name"],
                item["destination"],
                LIST_SEPARATOR.join(item["conditions"]),
                LIST_SEPARATOR.join(item["languages"]),
                item["contact_email"],
                item["daily_capacity"],
                item["weight"],
                "true" if item["active"] else "false",
            ]
        )
    return buffer.getvalue()


def import_providers(lines: Iterable[str]) -> dict[str, list[str]]:
    """Check every row, then create or update providers by slug and commit once."""
    rows = _checked_rows(lines)
    report: dict[str, list[str]] = {"created": [], "updated": [], "unchanged": []}
    for data, conditions in rows:
        provider = db.session.execute(
            db.select(Provider).where(Provider.slug == data["slug"])
        ).scalar_one_or_none()
        if provider is None:
            providers.new_provider(data, conditions)
            report["created"].append(data["slug"])
        elif _update(provider, data, conditions):
            report["updated"].append(data["slug"])
        else:
            report["unchanged"].append(data["slug"])
    try:
        db.session.commit()
    except IntegrityError:
        # A slug created elsewhere between our read and our commit.
        db.session.rollback()
        raise ProviderFileError(["a provider changed while importing; run it again"]) from None
    for action in ("created", "updated"):
        for slug in report[action]:
            log.info("provider %s %s by the CSV import", slug, action)
    return report


def _checked_rows(lines: Iterable[str]) -> list[tuple[dict[str, Any], list[Condition]]]:
    """Every row parsed and validated, or a ProviderFileError naming each bad row."""
    reader = csv.DictReader(lines)
    header = reader.fieldnames or []
    missing = [name for name in PROVIDER_COLUMNS if name not in header]
    unknown = [name for name in header if name not in PROVIDER_COLUMNS]
    if missing or unknown or len(set(header)) != len(header):
        expected = ",".join(PROVIDER_COLUMNS)
        raise ProviderFileError([f"row 1: the header must be {expected}"])
    schema = ProviderCreateSchema()
    problems: list[str] = []
    checked: list[tuple[dict[str, Any], list[Condition]]] = []
    first_row: dict[str, int] = {}
    for raw in reader:
        # The line the row ends on: the header is row 1, as a spreadsheet numbers it,
        # and blank lines (which the reader skips) still count.
        number = reader.line_num
        if None in raw or any(value is None for value in raw.values()):
            problems.append(f"row {number}: expected {len(PROVIDER_COLUMNS)} cells")
            continue
        try:
            data = schema.load(_body(raw))
        except ma.ValidationError as error:
            problems.extend(_describe(number, _field_messages(error.messages)))
            continue
        slug = data["slug"]
        if slug in first_row:
            problems.append(f"row {number}: slug {slug} is on row {first_row[slug]} already")
            continue
        first_row[slug] = number
        try:
            # The providers API's own check against the catalog (destination,
            # conditions offered there, languages), so both refuse alike.
            conditions = providers.check_catalog(data, data["destination"], data["conditions"])
        except InvalidFields as error:
            problems.extend(_describe(number, error.fields))
            continue
        checked.append((data, conditions))
    if problems:
        raise ProviderFileError(problems)
    return checked


def _body(raw: dict[str, str]) -> dict[str, Any]:
    """A CSV row as the body the providers API would receive."""
    body: dict[str, Any] = {name: raw[name] for name in PROVIDER_COLUMNS}
    for name in ("conditions", "languages"):
        body[name] = [item.strip() for item in raw[name].split(LIST_SEPARATOR) if item.strip()]
    if not raw["active"].strip():
        del body["active"]  # the schema's default: active
    else:
        # The API takes JSON's true or false; a CSV cell says true, yes, 1...
        try:
            body["active"] = ma.fields.Boolean().deserialize(raw["active"])
        except ma.ValidationError:
            pass  # left as it is, for the schema to name the cell
    return body


def _field_messages(messages: Any) -> dict[str, list[str]]:
    """Marshmallow's messages, with a list field's per-item messages joined."""
    fields: dict[str, list[str]] = {}
    for field, value in messages.items():
        # str(): the shared fields' messages are lazy (translated) strings.
        if isinstance(value, dict):
            fields[field] = [str(msg) for item in value.values() for msg in item]
        else:
            fields[field] = [str(msg) for msg in value]
    return fields


def _describe(number: int, fields: dict[str, list[str]]) -> list[str]:
    return [f"row {number}: {field}: {' '.join(msgs)}" for field, msgs in fields.items()]


def _update(provider: Provider, data: dict[str, Any], conditions: list[Condition]) -> bool:
    """Make the provider what its row says; True when anything changed."""
    changed = False
    values = {
        "destination_code": data["destination"],
        "languages": providers.unique(data["languages"]),
        **{name: data[name] for name in providers.PLAIN_FIELDS},
    }
    for name, value in values.items():
        if getattr(provider, name) != value:
            setattr(provider, name, value)
            changed = True
    if {c.slug for c in provider.conditions} != {c.slug for c in conditions}:
        provider.conditions = conditions
        changed = True
    if changed:
        # Set explicitly: a change of conditions alone does not touch the row.
        provider.updated_at = utcnow()
    return changed
