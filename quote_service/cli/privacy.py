"""Commands for keys and data-subject rights: `flask keys ...`, `flask privacy ...`."""

from __future__ import annotations

import json
from pathlib import Path

import click
from cryptography.fernet import Fernet
from flask import Flask
from flask.cli import with_appcontext

from quote_service.models import Actor
from quote_service.services import keys, privacy


@click.group("keys")
def keys_group() -> None:
    """Data encryption keys (DATA_ENCRYPTION_KEYS, newest first)."""


@keys_group.command("generate")
def generate_command() -> None:
    """Print a new Fernet key to put first in DATA_ENCRYPTION_KEYS."""
    click.echo(Fernet.generate_key().decode())


@keys_group.command("rotate")
@click.option("--batch-size", default=500, show_default=True, type=click.IntRange(1, 10_000))
@with_appcontext
def rotate_command(batch_size: int) -> None:
    """Re-encrypt everything with the newest key; safe to interrupt and run again."""
    with click.progressbar(length=keys.total_rows(), label="re-encrypting") as bar:
        rewritten = keys.rotate(batch_size, progress=bar.update)
    click.echo(f"{rewritten} rows re-encrypted with the newest key")


@click.group("privacy")
def privacy_group() -> None:
    """Export or erase everything stored about a person."""


@privacy_group.command("export")
@click.option("--email", required=True)
@click.option("--file", "path", type=click.Path(dir_okay=False, path_type=Path))
@with_appcontext
def export_command(email: str, path: Path | None) -> None:
    """Everything stored about the person with this email, as JSON."""
    document = json.dumps(privacy.export_person(email, Actor.CLI, None), indent=2)
    if path:
        path.write_text(document, encoding="utf-8")
        click.echo(f"written to {path}")
    else:
        click.echo(document)


@privacy_group.command("erase")
@click.option("--email", required=True)
@click.confirmation_option(prompt="Anonymise every request of this person for good?")
@with_appcontext
def erase_command(email: str) -> None:
    """Anonymise every request of the person with this email."""
    count = privacy.erase_person(email, Actor.CLI, None)
    click.echo(f"{count} requests anonymised")


def register(app: Flask) -> None:
    app.cli.add_command(keys_group)
    app.cli.add_command(privacy_group)
