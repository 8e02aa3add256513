"""Command-line interface: `flask --app quote_service <group> <command>`.

One module per command group: catalog (seed), users, operations (outbox,
requests, providers) and privacy (keys, privacy).
"""

from __future__ import annotations

from flask import Flask

from quote_service.cli import catalog, operations, privacy, users


def register_commands(app: Flask) -> None:
    for group in (catalog, users, privacy, operations):
        group.register(app)
