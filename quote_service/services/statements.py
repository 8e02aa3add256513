"""Several independent writes sent to the database in one round trip.

On PostgreSQL the writes become one statement: every one but the last a
data-modifying CTE of the last. They run on one snapshot and none sees what
another wrote, so they must touch different rows and read nothing another
writes. SQLite has no DML in a CTE: there they run one after the other,
inside the caller's transaction all the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Delete, Insert, Result, Update

from quote_service.extensions import db

Write = Insert | Update | Delete


def execute_together(writes: Sequence[Write]) -> Result[Any]:
    """Execute `writes` in the session's transaction, in one round trip where the database can.

    Returns the result of the last write (its RETURNING, if it has one).
    """
    *firsts, last = writes
    if db.session.get_bind().dialect.name != "postgresql":
        for write in firsts:
            db.session.execute(write)
        return db.session.execute(last)
    for number, write in enumerate(firsts):
        last = last.add_cte(write.cte(f"write_{number}"))
    return db.session.execute(last)
