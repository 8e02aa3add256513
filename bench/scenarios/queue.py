"""Scenario 4: queue pages (first and deep, with and without filters) as the table grows.

Requests are generated in bulk at about a thousand a day, newest first, so a
bigger table is a longer history behind the same recent requests. Each page
is asked of the project (bearer token, schema, ORM) and of its floor (one
hand-written query under the same gunicorn), alternately, one at a time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from bench import database
from bench.bulk import load_queue
from bench.context import Run
from bench.floor_queue import encode_cursor
from bench.loadgen import timed_get
from bench.results import Check, Ratio, ScenarioResult, Table, at_most, ms
from bench.stack import HOST
from bench.stats import percentile, ratio

PATH = "/api/v1/quote-requests"
LIMIT = 25
P95_TARGET_SECONDS = 0.020
GROWTH_TARGET = 1.5
SPACING = timedelta(days=1) / 1000
FILTERS = {"status": "in_review", "destination": "BE", "condition": "stroke"}


@dataclass(frozen=True)
class Case:
    name: str
    filtered: bool
    deep: bool
    sort: str | None = None


CASES = (
    Case("first page", False, False),
    Case("deep page", False, True),
    Case("first page, filtered", True, False),
    Case("deep page, filtered", True, True),
    Case("first page, most urgent (sort=sla)", False, False, "sla"),
)


@dataclass
class Timing:
    size: int
    case: str
    project: list[float]
    floor: list[float]

    def p(self, side: str, q: float) -> float:
        return percentile(getattr(self, side), q)


def _middle_cursor(run: Run, filtered: bool) -> str:
    """The cursor of the row halfway down the (filtered) queue, newest first."""
    where, params = "q.status <> 'spam'", []
    if filtered:
        where = "q.status = %s AND q.destination_code = %s AND q.condition_slug = %s"
        params = [FILTERS["status"], FILTERS["destination"], FILTERS["condition"]]
    with run.connect() as conn:
        total = conn.execute(
            f"SELECT count(*) FROM quote_request q WHERE {where}", params
        ).fetchone()
        row = conn.execute(
            f"SELECT q.created_at, q.id FROM quote_request q WHERE {where}"
            " ORDER BY q.created_at DESC, q.id DESC OFFSET %s LIMIT 1",
            [*params, int(total[0]) // 2 if total else 0],
        ).fetchone()
    if row is None:
        raise RuntimeError("queue: no rows to page through; the bulk load failed")
    return encode_cursor(row[0], row[1])


def _path(run: Run, case: Case) -> str:
    query: dict[str, object] = {"limit": LIMIT}
    if case.filtered:
        query.update(FILTERS)
    if case.deep:
        query["cursor"] = _middle_cursor(run, case.filtered)
    if case.sort:
        query["sort"] = case.sort
    return f"{PATH}?{urlencode(query)}"


def measure(run: Run, size: int, case: Case) -> Timing:
    path = _path(run, case)
    headers = {"Authorization": f"Bearer {run.token}"}
    sides = {"project": run.stack.api_port, "floor": run.stack.floor_port}
    pages = {}
    for side, port in sides.items():
        for _ in range(run.settings.queue_warmup):
            status, _, body = timed_get(HOST, port, path, headers)
            if status != 200:
                raise RuntimeError(f"queue: the {side} answered {status} to {path}: {body}")
        pages[side] = [item["reference"] for item in body["items"]]
    if pages["project"] != pages["floor"]:
        raise RuntimeError(f"queue: project and floor disagree on the page {path}")
    timing = Timing(size, case.name, [], [])
    for _ in range(run.settings.queue_samples):
        for side, port in sides.items():
            status, seconds, _ = timed_get(HOST, port, path, headers)
            if status != 200:
                raise RuntimeError(f"queue: the {side} answered {status} to {path}")
            getattr(timing, side).append(seconds)
    return timing


def run(run: Run) -> ScenarioResult:
    settings = run.settings
    database.empty_activity(settings.database_url)
    factory = run.factory()
    newest = datetime.now(UTC) - timedelta(minutes=1)
    loaded = 0
    timings: list[Timing] = []
    for size in settings.queue_sizes:
        run.log(f"queue: generating {size - loaded} more requests (COPY)")
        with run.connect() as conn:
            load_queue(
                conn, factory, size - loaded, newest - SPACING * loaded, SPACING, run.coordinator_id
            )
        loaded = size
        database.vacuum_analyze(settings.database_url)
        for case in CASES:
            timing = measure(run, size, case)
            run.log(
                f"queue {size}: {case.name}: project p95 {ms(timing.p('project', 95))} ms,"
                f" floor p95 {ms(timing.p('floor', 95))} ms"
            )
            timings.append(timing)
        run.stack.check_alive()

    smallest, largest = settings.queue_sizes[0], settings.queue_sizes[-1]
    by_key = {(t.size, t.case): t for t in timings}
    rows = [
        [
            f"{t.size:,}",
            t.case,
            ms(t.p("project", 50)),
            ms(t.p("project", 95)),
            ms(t.p("floor", 50)),
            ms(t.p("floor", 95)),
        ]
        for t in timings
    ]
    ratios: list[Ratio] = []
    checks: list[Check] = []
    for case in CASES:
        small, large = by_key[(smallest, case.name)], by_key[(largest, case.name)]
        growth = ratio(large.p("project", 95), small.p("project", 95))
        ratios.append(
            at_most(f"{case.name}: p95 at {largest:,} / at {smallest:,}", growth, GROWTH_TARGET)
        )
        p95 = large.p("project", 95)
        checks.append(
            Check(
                f"{case.name}: p95 at {largest:,}",
                f"{ms(p95)} ms",
                f"< {P95_TARGET_SECONDS * 1000:.0f} ms",
                not math.isnan(p95) and p95 < P95_TARGET_SECONDS,
            )
        )
    for case in CASES:
        # How much the floor itself moved between the sizes: the machine's share of the growth.
        small, large = by_key[(smallest, case.name)], by_key[(largest, case.name)]
        ratios.append(
            Ratio(
                f"{case.name}: floor p95 at {largest:,} / at {smallest:,}",
                ratio(large.p("floor", 95), small.p("floor", 95)),
            )
        )
    for case in CASES:
        large = by_key[(largest, case.name)]
        ratios.append(
            Ratio(
                f"{case.name}: p95 at {largest:,}, project / floor",
                ratio(large.p("project", 95), large.p("floor", 95)),
            )
        )
    return ScenarioResult(
        key="queue",
        title="Queue: GET /api/v1/quote-requests",
        summary=(
            f"Sizes {', '.join(f'{s:,}' for s in settings.queue_sizes)} requests (COPY, about"
            " 1,000 a day, a realistic mix of statuses; email, phone and message encrypted with"
            f" the run's key). {settings.queue_samples} samples per page and side, one request"
            " at a time on a fresh connection, project and floor alternating. The deep page"
            " starts at a cursor halfway down the queue; the filter is"
            f" `{urlencode(FILTERS)}`. Page size {LIMIT}."
        ),
        tables=[
            Table(
                [
                    "requests",
                    "page",
                    "project p50 ms",
                    "project p95 ms",
                    "floor p50 ms",
                    "floor p95 ms",
                ],
                rows,
            )
        ],
        ratios=ratios,
        checks=checks,
        raw={"timings": [vars(t) for t in timings]},
    )
