"""Operators' commands: `flask outbox status`, `flask requests show`, `flask providers ...`."""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import click
import marshmallow as ma
from flask import Flask
from flask.cli import with_appcontext
from sqlalchemy.exc import IntegrityError

from quote_service.errors import InvalidFields, NotFound
from quote_service.extensions import db
from quote_service.models import Condition, Provider, utcnow
from quote_service.schemas.providers import ProviderCreateSchema
from quote_service.services import outbox, providers, queue

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
# How the access log names reads made from the command line (as `flask privacy` does).
CLI_ACTOR = "cli"
# Fields the import sets on a provider as they come out of the schema.
IMPORTED_FIELDS = ("name", "contact_email", "daily_capacity", "weight", "active")


# --- outbox ------------------------------------------------------------------


@click.group("outbox")
def outbox_group() -> None:
    """The outbox: work waiting to be handed to the workers."""


@outbox_group.command("status")
@with_appcontext
def outbox_status_command() -> None:
    """How much work waits, how old the oldest is, and how much was published again."""
    state = outbox.backlog()
    now = utcnow()
    rows = [
        ("pending rows", state["pending"]),
        ("oldest pending", _age(now, state["oldest_created_at"])),
        ("never published", state["unpublished"]),
        ("oldest unpublished", _age(now, state["oldest_unpublished_created_at"])),
        # Lease run out (a lost message, a killed worker) or an email awaiting a retry.
        ("published more than once", state["republished"]),
    ]
    for label, value in rows:
        click.echo(f"{label + ':':<27}{value}")


def _age(now: datetime, since: datetime | None) -> str:
    """A duration such as `2h 5m 3s`; `none` when there is nothing to age."""
    if since is None:
        return "none"
    seconds = max(0, int((now - since).total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m")]
    # Leading zero units are dropped; seconds are always shown.
    while parts and parts[0][0] == 0:
        parts.pop(0)
    return " ".join(f"{value}{unit}" for value, unit in [*parts, (seconds, "s")])


# --- requests ----------------------------------------------------------------


@click.group("requests")
def requests_group() -> None:
    """Quote requests, as an operator looking into one sees them."""


@requests_group.command("show")
@click.argument("reference")
@with_appcontext
def show_request_command(reference: str) -> None:
    """One request: status, routing, emails and timeline.

    It prints the patient's name and email address (personal data: keep the
    output out of tickets and chat), and the read is recorded in the access
    log like a coordinator's; never the message, the email bodies or
    coordinators' notes.
    """
    try:
        detail = queue.detail(reference, CLI_ACTOR, None)
    except NotFound as error:
        raise click.ClickException(error.message) from None
    provider = detail["provider"]
    assignee = detail["assignee"]
    rows = [
        ("reference", detail["reference"]),
        ("status", detail["status"]),
        ("patient", f"{detail['full_name']} <{detail['email']}>"),
        ("destination", detail["destination_code"]),
        ("condition", detail["condition_slug"]),
        ("treatment", detail["treatment_slug"]),
        ("provider", f"{provider.slug} ({provider.name})" if provider else "none"),
        ("assignee", assignee.email if assignee else "none"),
        ("version", str(detail["version"])),
        ("created", _when(detail["created_at"])),
    ]
    for label, value in rows:
        click.echo(f"{label + ':':<13}{value}")
    click.echo("notifications:")
    if not detail["notifications"]:
        click.echo("  none")
    for notification in detail["notifications"]:
        click.echo(
            f"  {notification.kind:<17}{notification.status:<11}attempts {notification.attempts}"
        )
    click.echo("timeline:")
    for event in detail["timeline"]:
        click.echo(f"  {_when(event.at)}  {event.type:<24}{event.actor}")


def _when(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


# --- providers ---------------------------------------------------------------


class ProviderFileError(ValueError):
    """A providers CSV that cannot be imported; the message lists every problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("The file was not imported:\n" + "\n".join(problems))
        self.problems = problems


@click.group("providers")
def providers_group() -> None:
    """Providers as CSV, to review or change many at once.

    Columns: slug, name, destination, conditions, languages, contact_email,
    daily_capacity, weight, active; conditions and languages are separated by
    ';' inside their cell.
    """


@providers_group.command("export")
@click.option(
    "--file",
    "path",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write the CSV here; standard output by default.",
)
@with_appcontext
def export_providers_command(path: Path | None) -> None:
    """Every provider, active or not, as CSV (the file `providers import` reads)."""
    text = providers_csv(providers.list_providers())
    if path is None:
        click.echo(text, nl=False)
        return
    path.write_text(text, encoding="utf-8", newline="")
    click.echo(f"exported providers to {path}", err=True)


@providers_group.command("import")
@click.option(
    "--file",
    "path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A CSV file with the columns `providers export` writes.",
)
@with_appcontext
def import_providers_command(path: Path) -> None:
    """Create or update providers by slug, all in one transaction.

    Each row is checked as the providers API checks a new provider. Any error
    refuses the whole file: nothing is changed, and every error is listed with
    its row number (the header is row 1). An empty `active` cell means true.
    """
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            report = import_providers(handle)
    except ProviderFileError as error:
        db.session.rollback()
        raise click.ClickException(str(error)) from None
    except UnicodeDecodeError:
        raise click.ClickException(f"{path} is not UTF-8 text.") from None
    except csv.Error as error:
        raise click.ClickException(f"{path} is not a CSV file we can read: {error}") from None
    for slug in report["created"]:
        click.echo(f"created    {slug}")
    for slug in report["updated"]:
        click.echo(f"updated    {slug}")
    click.echo(
        f"{len(report['created'])} created, {len(report['updated'])} updated, "
        f"{len(report['unchanged'])} unchanged"
    )


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
            _create(data, conditions)
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
            conditions = providers._check_catalog(data, data["destination"], data["conditions"])
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
        if isinstance(value, dict):
            fields[field] = [msg for item in value.values() for msg in item]
        else:
            fields[field] = list(value)
    return fields


def _describe(number: int, fields: dict[str, list[str]]) -> list[str]:
    return [f"row {number}: {field}: {' '.join(msgs)}" for field, msgs in fields.items()]


def _create(data: dict[str, Any], conditions: list[Condition]) -> None:
    now = utcnow()
    provider = Provider(
        slug=data["slug"],
        destination_code=data["destination"],
        languages=_unique(data["languages"]),
        created_at=now,
        updated_at=now,
        **{name: data[name] for name in IMPORTED_FIELDS},
    )
    provider.conditions = conditions
    db.session.add(provider)


def _update(provider: Provider, data: dict[str, Any], conditions: list[Condition]) -> bool:
    """Make the provider what its row says; True when anything changed."""
    changed = False
    values = {
        "destination_code": data["destination"],
        "languages": _unique(data["languages"]),
        **{name: data[name] for name in IMPORTED_FIELDS},
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


def _unique(values: list[str]) -> list[str]:
    """The values without repeats, in their first order (as the providers API stores them)."""
    return list(dict.fromkeys(values))


def register(app: Flask) -> None:
    app.cli.add_command(outbox_group)
    app.cli.add_command(requests_group)
    app.cli.add_command(providers_group)
