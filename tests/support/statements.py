"""Counting the SQL statements an engine sends: what a change in round trips is tested by."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, event


@contextmanager
def statements_counted(engine: Engine) -> Iterator[list[str]]:
    """The statements `engine` sends meanwhile, from any thread, in order.

    BEGIN and COMMIT are not among them: the driver sends those itself.
    """
    statements: list[str] = []

    def count(connection, cursor, statement, *args) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def writes(statements: list[str]) -> list[str]:
    """The statements that write (a CTE of writes counts once), in order."""
    return [
        s
        for s in statements
        if s.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE", "WITH"))
    ]
