"""Scenario 3: stored requests routed and acknowledged through the real workers.

The project: N requests are committed at once as the intake leaves them
(request, event, outbox row); the clock runs from that commit until the SMTP
sink has accepted every acknowledgement. The work per request was designed
as three tasks (route, acknowledgement, provider email), so the floor is the
rate of no-op task round trips on the same broker with the same worker
options, three per request; it stays so although the routing task now sends
both emails itself, so that ratios compare across rounds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis

from bench import database, floor_tasks
from bench.bulk import store_received
from bench.context import Run
from bench.results import ScenarioResult, Table, at_least
from bench.stats import median, ratio
from tests.support.polling import wait_until

TARGET = 0.12
TASKS_PER_REQUEST = 3


@dataclass
class ProjectTrial:
    requests: int
    ack_seconds: float
    all_seconds: float

    @property
    def rate(self) -> float:
        return self.requests / self.ack_seconds

    @property
    def all_rate(self) -> float:
        return self.requests / self.all_seconds


@dataclass
class FloorTrial:
    tasks: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.tasks / self.seconds


def _deadline(run: Run, count: int) -> float:
    # Generous: a slow pipeline is a figure to report, not a reason to give up.
    return 60 + count * (0.5 if run.settings.quick else 0.4)


def project_trial(run: Run, count: int, label: str) -> ProjectTrial:
    database.empty_activity(run.settings.database_url)
    run.stack.sink.reset()
    prefix = f"bench-p-{run.tag}-{label}-"
    emails = [f"{prefix}{number}@example.org" for number in range(count)]
    factory = run.factory()
    with run.connect() as conn:
        store_received(conn, factory, emails)
        conn.commit()
        started = time.monotonic()
    sink = run.stack.sink
    if not wait_until(lambda: sink.count(prefix) >= count, _deadline(run, count), step=0.02):
        raise RuntimeError(
            f"pipeline: {sink.count(prefix)} of {count} acknowledgements arrived in time:\n"
            + run.stack.processes["worker"].log_tail()
        )
    acknowledged = time.monotonic()
    # Everything else (provider emails) must be done before the next trial starts.
    if not wait_until(lambda: sink.total >= 2 * count, _deadline(run, count), step=0.02):
        raise RuntimeError(f"pipeline: {sink.total} of {2 * count} emails arrived in time")
    finished = time.monotonic()
    run.wait_drained(60)
    return ProjectTrial(count, acknowledged - started, finished - started)


def floor_trial(run: Run, count: int) -> FloorTrial:
    client = redis.Redis.from_url(run.settings.redis_url)
    client.set(floor_tasks.DONE_KEY, 0)
    app = floor_tasks.make_celery(run.settings.redis_url)
    try:
        started = time.monotonic()
        with app.producer_or_acquire() as producer:
            for _ in range(count):
                app.send_task(floor_tasks.NOOP, producer=producer, queue=floor_tasks.QUEUE)

        def done() -> bool:
            return int(client.get(floor_tasks.DONE_KEY) or 0) >= count

        if not wait_until(done, _deadline(run, count), step=0.01):
            raise RuntimeError(
                f"pipeline floor: {client.get(floor_tasks.DONE_KEY)!r} of {count} tasks ran:\n"
                + run.stack.processes["floor-worker"].log_tail()
            )
        return FloorTrial(count, time.monotonic() - started)
    finally:
        app.close()
        client.close()


def warm_up(run: Run) -> None:
    """A little work through both workers: proves they are ready and fills their caches."""
    project_trial(run, run.settings.pipeline_warmup, "warm")
    floor_trial(run, run.settings.pipeline_warmup * TASKS_PER_REQUEST)


def run(run: Run) -> ScenarioResult:
    settings = run.settings
    count = settings.pipeline_requests
    tasks = count * TASKS_PER_REQUEST
    projects: list[ProjectTrial] = []
    floors: list[FloorTrial] = []
    for number in range(settings.pipeline_rounds):
        project = project_trial(run, count, f"r{number}")
        run.log(
            f"pipeline round {number + 1} project: {project.rate:.1f} req/s acknowledged"
            f" ({project.ack_seconds:.1f} s), {project.all_rate:.1f} req/s all emails"
        )
        floor = floor_trial(run, tasks)
        run.log(f"pipeline round {number + 1} floor: {floor.rate:.0f} no-op tasks/s")
        projects.append(project)
        floors.append(floor)
        run.stack.check_alive()

    project_rate = median([p.rate for p in projects])
    floor_rate = median([f.rate for f in floors])
    return ScenarioResult(
        key="pipeline",
        title="Pipeline: stored requests routed and acknowledged",
        summary=(
            f"{count} requests committed at once, routed and acknowledged by `celery -A worker"
            f" worker --concurrency={settings.worker_concurrency}` (outbox relay included)"
            " through Redis to the SMTP sink; the floor runs"
            f" {tasks} no-op tasks ({TASKS_PER_REQUEST} per request) through"
            f" `celery -A bench.floor_tasks worker` with the same options and Celery settings."
            f" {settings.pipeline_rounds} round(s) alternating project and floor."
        ),
        tables=[
            Table(
                ["", "median", "per trial"],
                [
                    [
                        "project: requests/s until every acknowledgement was accepted",
                        f"{project_rate:.1f}",
                        ", ".join(f"{p.rate:.1f}" for p in projects),
                    ],
                    [
                        "project: requests/s until every email (provider too) was accepted",
                        f"{median([p.all_rate for p in projects]):.1f}",
                        ", ".join(f"{p.all_rate:.1f}" for p in projects),
                    ],
                    [
                        "floor: no-op task round trips/s",
                        f"{floor_rate:.0f}",
                        ", ".join(f"{f.rate:.0f}" for f in floors),
                    ],
                ],
            )
        ],
        ratios=[
            at_least(
                "requests/s acknowledged / floor tasks/s", ratio(project_rate, floor_rate), TARGET
            )
        ],
        raw={
            "project": [vars(p) for p in projects],
            "floor": [vars(f) for f in floors],
        },
    )
