"""`flask --app quote_service seed`: load or refresh the catalog."""

from __future__ import annotations

from pathlib import Path

import click
from flask import Flask
from flask.cli import with_appcontext

from quote_service.services.seed import SeedError, seed_catalog


@click.command("seed")
@click.option(
    "--file",
    "path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Catalog file (YAML); the built-in demo catalog by default.",
)
@with_appcontext
def seed_command(path: Path | None) -> None:
    """Load or refresh the catalog; running it twice changes nothing."""
    try:
        report = seed_catalog(path)
    except SeedError as error:
        raise click.ClickException(str(error)) from None
    for line in report.created:
        click.echo(f"created  {line}")
    for line in report.updated:
        click.echo(f"updated  {line}")
    for line in report.retired:
        click.echo(f"retired  {line}")
    click.echo("catalog up to date" if not report.changed else "catalog loaded")


def register(app: Flask) -> None:
    app.cli.add_command(seed_command)
