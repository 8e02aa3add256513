"""Operators' commands: `flask outbox status`, `flask requests show`, `flask providers ...`."""

from __future__ import annotations

import csv
import logging
from datetime import datetime
from pathlib import Path

import click
from flask import Flask
from flask.cli import with_appcontext

from quote_service.errors import NotFound
from quote_service.extensions import db
from quote_service.models import Actor, utcnow
from quote_service.services import outbox, provider_csv, providers, queue

log = logging.getLogger(__name__)

# How the access log names reads made from the command line (as `flask privacy` does).


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
        detail = queue.detail(reference, Actor.CLI, None)
    except NotFound as error:
        raise click.ClickException(error.message) from None
    provider = detail.provider
    assignee = detail.assignee
    rows = [
        ("reference", detail.reference),
        ("status", detail.status),
        ("patient", f"{detail.full_name} <{detail.email}>"),
        ("destination", detail.destination_code),
        ("condition", detail.condition_slug),
        ("treatment", detail.treatment_slug),
        ("provider", f"{provider.slug} ({provider.name})" if provider else "none"),
        ("assignee", assignee.email if assignee else "none"),
        ("version", str(detail.version)),
        ("created", _when(detail.created_at)),
    ]
    for label, value in rows:
        click.echo(f"{label + ':':<13}{value}")
    click.echo("notifications:")
    if not detail.notifications:
        click.echo("  none")
    for notification in detail.notifications:
        click.echo(
            f"  {notification.kind:<17}{notification.status:<11}attempts {notification.attempts}"
        )
    click.echo("timeline:")
    for event in detail.timeline:
        click.echo(f"  {_when(event.at)}  {event.type:<24}{event.actor}")


def _when(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


# --- providers ---------------------------------------------------------------


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
    text = provider_csv.providers_csv(providers.find_providers())
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
            report = provider_csv.import_providers(handle)
    except provider_csv.ProviderFileError as error:
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


def register(app: Flask) -> None:
    app.cli.add_command(outbox_group)
    app.cli.add_command(requests_group)
    app.cli.add_command(providers_group)
