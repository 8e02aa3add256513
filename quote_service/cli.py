"""Command-line interface: `flask --app quote_service seed`, ..."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask import Flask
from flask.cli import with_appcontext

from quote_service import cli_operations, cli_privacy
from quote_service.errors import ServiceError
from quote_service.models import ROLES
from quote_service.services import passwords, users
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


@click.group("users")
def users_group() -> None:
    """Coordinators and admins, and their API tokens."""


@users_group.command("create")
@click.option("--email", required=True)
@click.option("--role", required=True, type=click.Choice(ROLES))
@with_appcontext
def create_user_command(email: str, role: str) -> None:
    """Create a user and print its token once, alone on the last line."""
    try:
        user, token = users.create_user(email, role)
    except ServiceError as error:
        raise click.ClickException(_describe(error)) from None
    click.echo(f"created {user.role} {user.email}; the token is shown once:")
    click.echo(token)


@users_group.command("password")
@click.option("--email", required=True)
@with_appcontext
def set_password_command(email: str) -> None:
    """Set a user's console password, read as one line from standard input."""
    line = sys.stdin.readline()
    # Only the line ending is removed: spaces may be part of a passphrase.
    password = line.removesuffix("\n").removesuffix("\r")
    try:
        user = passwords.set_password(email, password)
    except ServiceError as error:
        raise click.ClickException(_describe(error)) from None
    click.echo(f"console password set for {user.email}")


@users_group.command("revoke")
@click.option("--email", required=True)
@with_appcontext
def revoke_user_command(email: str) -> None:
    """Revoke a user's token at once."""
    try:
        user = users.revoke_user(email)
    except ServiceError as error:
        raise click.ClickException(_describe(error)) from None
    click.echo(f"revoked {user.email}")


@users_group.command("list")
@with_appcontext
def list_users_command() -> None:
    """Every user: role, state, and when its token was last used."""
    for user in users.list_users():
        state = "revoked" if user.revoked_at else "active"
        last_used = (
            user.last_used_at.isoformat(timespec="seconds") if user.last_used_at else "never"
        )
        click.echo(f"{user.id}\t{user.email}\t{user.role}\t{state}\tlast used {last_used}")


def _describe(error: ServiceError) -> str:
    details = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in error.fields.items())
    return f"{error.message} {details}".strip()


def register_commands(app: Flask) -> None:
    app.cli.add_command(seed_command)
    app.cli.add_command(users_group)
    cli_privacy.register(app)
    cli_operations.register(app)
