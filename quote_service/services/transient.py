"""Errors that a moment's wait mends, and a bounded retry loop for them.

A database restart, a failover or a terminated backend surfaces as a
connection error on whatever statement was running; so does a pool that
cannot connect during a short outage. Such errors are retried where they
happen, with a short backoff, instead of ending the work and leaving it to a
lease or a visibility timeout.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

log = logging.getLogger(__name__)

T = TypeVar("T")


def is_transient(error: BaseException) -> bool:
    """Whether `error` is the database going away or refusing for a moment."""
    if isinstance(error, OperationalError | InterfaceError | DisconnectionError | PoolTimeoutError):
        return True
    return isinstance(error, DBAPIError) and bool(error.connection_invalidated)


def retry_transient(
    work: Callable[[], T],
    seconds: float,
    on_retry: Callable[[], None] = lambda: None,
    first_delay: float = 0.25,
    max_delay: float = 4.0,
) -> T:
    """Run `work`, again after each transient error, for at most about `seconds`.

    `on_retry` cleans up between tries (a session rollback). The last error
    is raised when the time is up, and any other error at once.
    """
    deadline = time.monotonic() + seconds
    delay = first_delay
    while True:
        try:
            return work()
        except Exception as error:
            if not is_transient(error) or time.monotonic() + delay > deadline:
                raise
            log.warning("transient %s: again in %.2f s", type(error).__name__, delay)
            on_retry()
            time.sleep(delay)
            delay = min(delay * 2, max_delay)
