"""Scenario 2: intake throughput and latency under wrk, against the one-INSERT floor."""

from __future__ import annotations

import time

from bench import database
from bench.context import Run
from bench.loadgen import WrkResult, intake_body, run_wrk, write_wrk_script
from bench.results import ScenarioResult, Table, at_least, at_most, ms
from bench.stack import HOST
from bench.stats import median, ratio

PATH = "/api/v1/quote-requests"
TARGET = 0.35
# The urgent-sign rules may cost the intake at most this share of a request.
RULES_SHARE_TARGET = 0.05
# A long message as patients write them (the posted one is short): the worst case.
LONG_MESSAGE = (
    "Mijn vader had in maart 2021 een herseninfarct. Sindsdien is zijn linkerarm zwak en"
    " spreekt hij langzamer, maar hij loopt weer met een stok. Hij heeft ook diabetes type 2"
    " en gebruikt insuline sinds 2015. Geen pijn op de borst, geen nieuwe klachten. "
) * 8


def rules_seconds(message: str, repeat: int) -> float:
    """The median time the urgent-sign rules take to read `message`, in this process."""
    from quote_service.safety.signs import assess, ruleset

    rules = ruleset()
    assess(message, rules)  # compiled and warm
    samples = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(repeat):
            assess(message, rules)
        samples.append((time.perf_counter() - start) / repeat)
    return median(samples)


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
    # A request's share of one gunicorn worker is workers / throughput seconds;
    # the rules run once per request inside it, so their share is their time
    # over that (what the throughput ratio would lose with the rules on).
    per_request = settings.http_workers / project if project else float("nan")
    # The smoke only proves the figure is computed: a tenth of the repeats.
    repeats = 200 if settings.quick else 2000
    posted = rules_seconds(intake_body("rules@example.org")["message"], repeats)
    long = rules_seconds(LONG_MESSAGE, repeats // 10)
    result.ratios.append(
        at_most("urgent rules, share of a request's time", posted / per_request, RULES_SHARE_TARGET)
    )
    result.notes.append(
        f"Urgent-sign rules: {posted * 1e6:.0f} µs for the posted message,"
        f" {long * 1e6:.0f} µs for a {len(LONG_MESSAGE)}-character one"
        f" ({long / per_request:.1%} of a request); a request takes"
        f" {per_request * 1e3:.1f} ms of a worker at the measured throughput."
    )
    if stored is not None:
        result.notes.append(
            f"Written by the project: {stored[0]} requests and {stored[1]} outbox rows;"
            f" by the floor: {stored[2]} rows (warm-up included)."
        )
    return result
