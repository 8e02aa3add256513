"""The one polling loop of the tests and the bench: wait until a condition holds."""

from __future__ import annotations

import time
from collections.abc import Callable

#: Seconds between two looks at a condition, unless a caller asks for another step.
POLL_INTERVAL = 0.05


def wait_until(
    condition: Callable[[], bool], timeout: float = 20.0, step: float = POLL_INTERVAL
) -> bool:
    """Poll `condition` every `step` s until it holds or `timeout` s have passed.

    Returns whether it held; it is looked at once more at the deadline, so a condition
    that became true during the last sleep still counts. An exception raised by
    `condition` propagates at once (a way to fail early, e.g. when a process died).
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return bool(condition())
