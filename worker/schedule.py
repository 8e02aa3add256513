"""Celery beat: the periodic jobs of `celery -A worker beat`."""

from __future__ import annotations

from typing import Any

BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    # Invitations expire to the minute; each sweep is idempotent (rows locked,
    # emails deduplicated), so a late or repeated run is harmless.
    "sweep-invitations": {"task": "quote.sweep_invitations", "schedule": 60.0},
    # Idempotent: a request is alerted once, so a late or repeated run is harmless.
    "check-sla": {"task": "quote.check_sla", "schedule": 300.0},
    # Sends at most one digest per COORDINATOR_ALERT_INTERVAL_MINUTES; checking every
    # minute keeps a held alert waiting at most a minute past its interval.
    "send-alert-digest": {"task": "quote.send_alert_digest", "schedule": 60.0},
    # Works in batches; hourly keeps up with any backlog without long runs.
    "apply-retention": {"task": "quote.apply_retention", "schedule": 3600.0},
    # Keys live at least 24 h; purging hourly keeps them at most an hour longer.
    "purge-idempotency-keys": {"task": "quote.purge_idempotency_keys", "schedule": 3600.0},
}
