"""Scenario 5: at a steady rate, time from each POST to its acknowledgement at the SMTP sink.

The floor does the same trip the thinnest way: an endpoint that INSERTs,
COMMITs and publishes a task at once, and a task that reads the address and
sends a one-line email.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bench import database
from bench.context import Run
from bench.loadgen import post_steadily
from bench.results import Check, Ratio, ScenarioResult, Table, ms
from bench.stack import HOST
from bench.stats import median, percentile, ratio
from tests.support.polling import wait_until

TARGET_P99_SECONDS = 2.0
# At a rate the pipeline keeps up with, a request's own trip: two relay wake-ups,
# a routing and a send.
LIGHT_TARGET_P99_SECONDS = 0.150


def settle_seconds(count: int) -> float:
    """How long after the last POST the acknowledgements may still arrive.

    Generous: when the rate is more than the pipeline can take, the backlog
    drains after the last POST and that delay is the figure to report.
    """
    return 60.0 + count * 0.5


@dataclass
class Trial:
    sent: int
    accepted: int
    acknowledged: int
    latencies: list[float]
    #: time to the POST's answer
    answers: list[float]

    @property
    def p50(self) -> float:
        return percentile(self.latencies, 50)

    @property
    def p99(self) -> float:
        return percentile(self.latencies, 99)


def trial(run: Run, side: str, label: str, rate: float) -> Trial:
    settings = run.settings
    database.empty_activity(settings.database_url)
    run.stack.sink.reset()
    prefix = f"bench-e-{run.tag}-{label}-"
    count = max(1, round(rate * settings.e2e_seconds))
    emails = [f"{prefix}{number}@example.org" for number in range(count)]
    port, path = (
        (run.stack.api_port, "/api/v1/quote-requests")
        if side == "project"
        else (run.stack.floor_port, "/e2e/quote-requests")
    )
    sent = post_steadily(HOST, port, path, emails, rate, f"{run.tag}-{label}")
    accepted = [s for s in sent if s.status == 201]
    sink = run.stack.sink
    wait_until(lambda: sink.count(prefix) >= len(accepted), settle_seconds(count), step=0.05)
    arrivals = sink.arrivals(prefix)
    latencies = [arrivals[s.email] - s.scheduled for s in accepted if s.email in arrivals]
    if side == "project":
        # The provider emails too: nothing may still run during the floor's trial.
        run.wait_drained(settle_seconds(count))
    return Trial(len(sent), len(accepted), len(latencies), latencies, [s.seconds for s in sent])


def _row(name: str, trials: list[Trial]) -> list[str]:
    return [
        name,
        ms(median([t.p50 for t in trials])),
        ms(median([t.p99 for t in trials])),
        ms(median([percentile(t.answers, 99) for t in trials])),
        str(sum(t.sent for t in trials)),
        str(sum(t.accepted for t in trials)),
        str(sum(t.acknowledged for t in trials)),
    ]


def _trials(run: Run, rate: float, rounds: int, label: str) -> dict[str, list[Trial]]:
    trials: dict[str, list[Trial]] = {"project": [], "floor": []}
    for number in range(rounds):
        for side in trials:
            result = trial(run, side, f"{label}{number}{side[0]}", rate)
            run.log(
                f"end to end at {rate:g}/s, round {number + 1} {side}: p50 {ms(result.p50)} ms,"
                f" p99 {ms(result.p99)} ms, {result.acknowledged}/{result.sent} acknowledged"
            )
            trials[side].append(result)
        run.stack.check_alive()
    return trials


def run(run: Run) -> ScenarioResult:
    settings = run.settings
    trials = _trials(run, settings.e2e_rate, settings.e2e_rounds, "r")
    # A rate the pipeline keeps up with: the latency of one request, not of a backlog.
    light = _trials(run, settings.e2e_light_rate, 1, "l") if settings.e2e_light_rate else None

    project_p99 = median([t.p99 for t in trials["project"]])
    light_p99 = median([t.p99 for t in light["project"]]) if light else math.nan
    floor_p99 = median([t.p99 for t in trials["floor"]])
    lost = sum(t.sent - t.acknowledged for t in trials["project"])
    result = ScenarioResult(
        key="end_to_end",
        title="End to end: POST to acknowledgement accepted by the SMTP sink",
        summary=(
            f"{settings.e2e_rate:g} requests/s for {settings.e2e_seconds:g} s (open loop: each"
            " POST leaves on schedule, whatever the previous answers), the API and a worker"
            f" running with their production settings; {settings.e2e_rounds} round(s) alternating"
            " project and floor"
            + (
                f", then one round at {settings.e2e_light_rate:g} requests/s, a rate the"
                " pipeline keeps up with"
                if light
                else ""
            )
            + ". The clock starts when the POST is due to leave and stops when the sink"
            " accepts that patient's acknowledgement."
        ),
        tables=[
            Table(
                [
                    "",
                    "p50 ms",
                    "p99 ms",
                    "POST answered, p99 ms",
                    "sent",
                    "201",
                    "acknowledged",
                ],
                [
                    _row(f"project, {settings.e2e_rate:g}/s", trials["project"]),
                    _row(f"floor, {settings.e2e_rate:g}/s", trials["floor"]),
                    *(
                        [
                            _row(f"project, {settings.e2e_light_rate:g}/s", light["project"]),
                            _row(f"floor, {settings.e2e_light_rate:g}/s", light["floor"]),
                        ]
                        if light
                        else []
                    ),
                ],
            )
        ],
        checks=[
            Check(
                "project p99",
                f"{ms(project_p99)} ms",
                f"< {TARGET_P99_SECONDS * 1000:.0f} ms",
                not math.isnan(project_p99) and project_p99 < TARGET_P99_SECONDS and lost == 0,
            ),
            *(
                [
                    Check(
                        f"project p99 at {settings.e2e_light_rate:g}/s",
                        f"{ms(light_p99)} ms",
                        f"< {LIGHT_TARGET_P99_SECONDS * 1000:.0f} ms",
                        not math.isnan(light_p99) and light_p99 < LIGHT_TARGET_P99_SECONDS,
                    )
                ]
                if light
                else []
            ),
        ],
        raw={
            side: [
                {
                    "sent": t.sent,
                    "accepted": t.accepted,
                    "latencies": t.latencies,
                    "answers": t.answers,
                }
                for t in ts
            ]
            for side, ts in trials.items()
        }
        | (
            {
                f"{side}_light": [{"latencies": t.latencies} for t in ts]
                for side, ts in light.items()
            }
            if light
            else {}
        ),
    )
    # No target on this ratio (the target is the absolute p99): it says how far
    # the project's trip is from the thinnest one.
    result.ratios.append(Ratio("p99, project / floor", ratio(project_p99, floor_p99)))
    if lost:
        result.notes.append(f"{lost} requests of the project were not acknowledged in time.")
    return result
