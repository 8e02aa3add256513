"""How big a run is: the full benchmark, or the smoke (`BENCH_QUICK=1`) that takes seconds."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/quote_service_bench"
# A database number of its own: the run flushes it (the tests use 15 by default).
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"
SCENARIOS = ("intake", "pipeline", "queue", "end_to_end", "console")


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class Settings:
    quick: bool
    database_url: str
    redis_url: str
    scenarios: tuple[str, ...] = SCENARIOS
    #: gunicorn workers and Celery worker concurrency, project and floors alike.
    http_workers: int = field(default_factory=cpu_count)
    worker_concurrency: int = field(default_factory=cpu_count)
    #: A B rounds per scenario: the project and its floor alternate, medians are reported.
    rounds: int = 3
    # Intake (wrk).
    intake_seconds: float = 15.0
    intake_warmup_seconds: float = 3.0
    intake_connections: int = 4
    # Pipeline.
    pipeline_requests: int = 2000
    pipeline_rounds: int = 2
    pipeline_warmup: int = 20
    # Queue.
    queue_sizes: tuple[int, ...] = (10_000, 100_000, 1_000_000)
    queue_samples: int = 200
    queue_warmup: int = 20
    # End to end.
    e2e_rate: float = 50.0
    e2e_seconds: float = 20.0
    e2e_rounds: int = 2
    #: One more round at a rate the pipeline keeps up with (0: none).
    e2e_light_rate: float = 5.0
    keep_data: bool = False

    @classmethod
    def full(cls, database_url: str, redis_url: str, **overrides: object) -> Settings:
        return cls(quick=False, database_url=database_url, redis_url=redis_url, **overrides)  # type: ignore[arg-type]

    @classmethod
    def smoke(cls, database_url: str, redis_url: str, **overrides: object) -> Settings:
        """Every scenario, tiny: it proves the harness works, not how fast anything is."""
        tiny: dict[str, object] = {
            "rounds": 2,
            "intake_seconds": 1.0,
            "intake_warmup_seconds": 0.5,
            "pipeline_requests": 10,
            "pipeline_rounds": 1,
            "pipeline_warmup": 2,
            "queue_sizes": (300, 1_500),
            "queue_samples": 5,
            "queue_warmup": 2,
            "e2e_rate": 10.0,
            "e2e_seconds": 1.0,
            "e2e_rounds": 1,
            "e2e_light_rate": 0.0,
        }
        tiny.update(overrides)
        return cls(quick=True, database_url=database_url, redis_url=redis_url, **tiny)  # type: ignore[arg-type]
