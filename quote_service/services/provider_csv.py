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
from quote_service.models import Provider
from quote_service.schemas.providers import ProviderCreateSchema, load_partly
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


def providers_csv(items: Iterable[Provider]) -> str:
    """Providers as CSV text."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(PROVIDER_COLUMNS)
    for provider in items:
        writer.writerow(
            [
                provider.slug,
                provider.name,
                provider.destination_code,
                LIST_SEPARATOR.join(c.slug for c in provider.conditions),
                LIST_SEPARATOR.join(provider.languages),
                provider.contact_email,
                provider.daily_capacity,
                provider.weight,
                "true" if provider.active else "false",
            ]
        )
    return buffer.getvalue()


def import_providers(lines: Iterable[str]) -> dict[str, list[str]]:
    """Create or update providers by slug, row by row, and commit once if every row was right.

    Each row goes through the providers service as an admin's body would, so
    a row's schema and catalog errors are named together. Any error refuses
    the whole file (the session is rolled back) with every error of every row.
    """
    report: dict[str, list[str]] = {"created": [], "updated": [], "unchanged": []}
    try:
        problems = _apply_rows(lines, report)
        if problems:
            db.session.rollback()
            raise ProviderFileError(problems)
        db.session.commit()
    except IntegrityError:
        # A slug created elsewhere between our read and our commit.
        db.session.rollback()
        raise ProviderFileError(["a provider changed while importing; run it again"]) from None
    for action in ("created", "updated"):
        for slug in report[action]:
            log.info("provider %s %s by the CSV import", slug, action)
    return report


def _apply_rows(lines: Iterable[str], report: dict[str, list[str]]) -> list[str]:
    """Save every row into the session, filling `report`; the problems of the bad rows."""
    reader = csv.DictReader(lines)
    header = reader.fieldnames or []
    missing = [name for name in PROVIDER_COLUMNS if name not in header]
    unknown = [name for name in header if name not in PROVIDER_COLUMNS]
    if missing or unknown or len(set(header)) != len(header):
        expected = ",".join(PROVIDER_COLUMNS)
        return [f"row 1: the header must be {expected}"]
    # The file has no city: a provider's stays as it is, a new one has none.
    schema = ProviderCreateSchema(partial=("city",))
    problems: list[str] = []
    first_row: dict[str, int] = {}
    for raw in reader:
        # The line the row ends on: the header is row 1, as a spreadsheet numbers it,
        # and blank lines (which the reader skips) still count.
        number = reader.line_num
        if None in raw or any(value is None for value in raw.values()):
            problems.append(f"row {number}: expected {len(PROVIDER_COLUMNS)} cells")
            continue
        data, refused = load_partly(schema, _body(raw))
        slug = data.get("slug") if "slug" not in refused else None
        if slug in first_row:
            problems.append(f"row {number}: slug {slug} is on row {first_row[slug]} already")
            continue
        if slug is not None:
            first_row[slug] = number
        existing = providers.provider_by_slug(slug) if slug is not None else None
        try:
            _, changed = providers.save(data, existing, refused=refused)
        except InvalidFields as error:
            problems += [f"row {number}: {line}" for line in providers.error_lines(error)]
            continue
        action = "created" if existing is None else "updated" if changed else "unchanged"
        report[action].append(data["slug"])
    return problems


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
