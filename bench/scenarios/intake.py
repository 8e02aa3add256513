"""Scenario 2: intake throughput and latency under wrk, against the one-INSERT floor."""

from __future__ import annotations

from bench import database
from bench.context import Run
from bench.loadgen import WrkResult, run_wrk, write_wrk_script
from bench.results import ScenarioResult, Table, at_least, ms
from bench.stack import HOST
from bench.stats import median, ratio

PATH = "/api/v1/quote-requests"
TARGET = 0.8


def _row(name: str, trials: list[WrkResult]) -> list[str]:
    return [
        name,
        f"{median([t.throughput for t in trials]):.0f}",
        ms(median([t.p50 for t in trials])),
        ms(median([t.p99 for t in trials])),
        str(sum(t.errors for t in trials)),
        ", ".join(f"{t.throughput:.0f}" for t in trials),
    ]


def run(run: Run) -> ScenarioResult:
    settings = run.settings
    database.empty_activity(settings.database_url)
    script = write_wrk_script(run.run_dir, PATH, f"bench-i-{run.tag}-")
    sides = {
        "project": f"http://{HOST}:{run.stack.api_port}{PATH}",
        "floor": f"http://{HOST}:{run.stack.floor_port}{PATH}",
    }
    for side, url in sides.items():
        run.log(f"intake: warming up the {side}")
        run_wrk(
            url, script, settings.intake_warmup_seconds, settings.intake_connections, f"w{side[0]}"
        )
    trials: dict[str, list[WrkResult]] = {side: [] for side in sides}
    for number in range(settings.rounds):
        for side, url in sides.items():
            result = run_wrk(
                url,
                script,
                settings.intake_seconds,
                settings.intake_connections,
                f"r{number}{side[0]}",
            )
            run.log(
                f"intake round {number + 1} {side}: {result.throughput:.0f} req/s,"
                f" p50 {ms(result.p50)} ms, p99 {ms(result.p99)} ms, {result.errors} errors"
            )
            trials[side].append(result)
        run.stack.check_alive()

    with run.connect() as conn:
        stored = conn.execute(
            "SELECT (SELECT count(*) FROM quote_request), (SELECT count(*) FROM outbox_message),"
            f" (SELECT count(*) FROM {database.FLOOR_TABLE})"
        ).fetchone()
    project = median([t.throughput for t in trials["project"]])
    floor = median([t.throughput for t in trials["floor"]])
    result = ScenarioResult(
        key="intake",
        title="Intake: POST /api/v1/quote-requests",
        summary=(
            f"wrk, {settings.intake_connections} connections, {settings.intake_seconds:g} s per"
            f" trial, {settings.rounds} rounds alternating project and floor; gunicorn"
            f" --workers={settings.http_workers} for both. Every request has its own address"
            " and Idempotency-Key; rate limiting counts in Redis with a limit never reached."
        ),
        tables=[
            Table(
                ["", "req/s (median)", "p50 ms", "p99 ms", "errors", "req/s per trial"],
                [_row("project", trials["project"]), _row("floor", trials["floor"])],
            )
        ],
        ratios=[at_least("throughput, project / floor", ratio(project, floor), TARGET)],
        raw={side: [vars(t) for t in results] for side, results in trials.items()},
    )
    if stored is not None:
        result.notes.append(
            f"Written by the project: {stored[0]} requests and {stored[1]} outbox rows;"
            f" by the floor: {stored[2]} rows (warm-up included)."
        )
    return result
