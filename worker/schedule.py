"""Celery beat: the periodic jobs of `celery -A worker beat`."""

from __future__ import annotations

from typing import Any

BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    # Idempotent: a request is alerted once, so a late or repeated run is harmless.
    "check-sla": {"task": "quote.check_sla", "schedule": 300.0},
}
