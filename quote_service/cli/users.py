"""`flask --app quote_service users ...`: coordinators, admins and their tokens."""

from __future__ import annotations

import sys
from datetime import datetime

import click
from flask import Flask
from flask.cli import with_appcontext

from quote_service.errors import ServiceError
from quote_service.models import ROLES
from quote_service.services import passwords, users


@click.group("users")
def users_group() -> None:
    """Coordinators and admins, and their API tokens."""


@users_group.command("create")
@click.option("--email", required=True)
@click.option("--role", required=True, type=click.Choice(ROLES))
@click.option("--name", default=None, help="The display name the queue shows.")
@click.option(
    "--expires-days",
    type=click.IntRange(min=0),
    default=None,
    help="Days the token is valid (default: API_TOKEN_EXPIRES_DAYS); 0: never expires.",
)
@with_appcontext
def create_user_command(email: str, role: str, name: str | None, expires_days: int | None) -> None:
    """Create a user and print its token once, alone on the last line."""
    try:
        user, token = users.create_user(email, role, expires_days, name=name)
    except ServiceError as error:
        raise click.ClickException(_describe(error)) from None
    expiry = _when(user.expires_at, "never expires")
    click.echo(f"created {user.role} {user.email}; token expires {expiry}; it is shown once:")
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
    """Every user: role, state, when its token was last used and when it expires."""
    for user in users.list_users():
        state = "revoked" if user.revoked_at else "expired" if user.is_expired() else "active"
        last_used = _when(user.last_used_at, "never")
        expires = _when(user.expires_at, "never")
        click.echo(
            f"{user.id}\t{user.email}\t{user.role}\t{state}\t"
            f"last used {last_used}\texpires {expires}"
        )


def _when(moment: datetime | None, otherwise: str) -> str:
    return moment.isoformat(timespec="seconds") if moment else otherwise


def _describe(error: ServiceError) -> str:
    details = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in error.fields.items())
    return f"{error.message} {details}".strip()


def register(app: Flask) -> None:
    app.cli.add_command(users_group)
