"""Scenario 5: the console's queue page against the JSON queue page it is built on.

The console renders the same queue service's page as HTML, with the saved
views' (bounded) counts and the filter choices around it; its floor is the
JSON API's page for the same filters, under the same gunicorn, so the ratio
is what the HTML costs. The table is the queue scenario's, when it ran just
before (at its largest size); else this scenario loads its own.
"""

from __future__ import annotations

import http.client
import math
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.cookies import SimpleCookie
from urllib.parse import urlencode

import argon2

from bench import database
from bench.bulk import load_queue
from bench.context import Run
from bench.loadgen import HTTP_TIMEOUT_SECONDS
from bench.results import Check, Ratio, ScenarioResult, Table, at_most, ms
from bench.stack import HOST
from bench.stats import percentile, ratio

API_PATH = "/api/v1/quote-requests"
CONSOLE_PATH = "/console/"
LIMIT = 25
P95_TARGET_SECONDS = 0.050
RATIO_TARGET = 2.0
SPACING = timedelta(days=1) / 1000
PASSWORD = "bench console password"
CASES: dict[str, dict[str, object]] = {
    "first page": {},
    "first page, filtered": {"status": "in_review", "destination": "BE", "condition": "stroke"},
    # The "unassigned" saved view, as filters both pages take.
    "unassigned": {
        "status": ["received", "routed", "unroutable", "in_review", "quoted"],
        "assignee": "none",
    },
}
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Timing:
    case: str
    console: list[float]
    api: list[float]

    def p(self, side: str, q: float) -> float:
        return percentile(getattr(self, side), q)


def _request(
    method: str, port: int, path: str, headers: dict[str, str], body: str | None = None
) -> tuple[int, float, http.client.HTTPResponse, bytes]:
    started = time.perf_counter()
    connection = http.client.HTTPConnection(HOST, port, timeout=HTTP_TIMEOUT_SECONDS)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        payload = response.read()
    finally:
        connection.close()
    return response.status, time.perf_counter() - started, response, payload


def _cookie(response: http.client.HTTPResponse, jar: dict[str, str]) -> None:
    for header in response.headers.get_all("Set-Cookie") or []:
        for name, morsel in SimpleCookie(header).items():
            jar[name] = morsel.value


def sign_in(run: Run) -> dict[str, str]:
    """A console session for the bench coordinator: the headers that carry it."""
    with run.connect() as conn:
        conn.execute(
            "UPDATE user_account SET password_hash = %s WHERE id = %s",
            (argon2.PasswordHasher().hash(PASSWORD), run.coordinator_id),
        )
        email = conn.execute(
            "SELECT email FROM user_account WHERE id = %s", (run.coordinator_id,)
        ).fetchone()[0]
    port, jar = run.stack.api_port, {}
    status, _, response, page = _request("GET", port, "/console/login", {})
    _cookie(response, jar)
    match = CSRF.search(page.decode())
    if status != 200 or match is None:
        raise RuntimeError(f"console: the sign-in page answered {status}")
    form = urlencode({"email": email, "password": PASSWORD, "csrf_token": match.group(1)})
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "Cookie": "; ".join(f"{k}={v}" for k, v in jar.items()),
    }
    status, _, response, _ = _request("POST", port, "/console/login", headers, form)
    if status != 303:
        raise RuntimeError(f"console: signing in answered {status}")
    _cookie(response, jar)
    return {"Cookie": "; ".join(f"{k}={v}" for k, v in jar.items())}


def measure(run: Run, case: str, cookie: dict[str, str]) -> Timing:
    query = urlencode({"limit": LIMIT, **CASES[case]}, doseq=True)
    sides = {
        "console": (f"{CONSOLE_PATH}?{query}", cookie),
        "api": (f"{API_PATH}?{query}", {"Authorization": f"Bearer {run.token}"}),
    }
    port = run.stack.api_port
    for side, (path, headers) in sides.items():
        for _ in range(run.settings.queue_warmup):
            status, _, _, body = _request("GET", port, path, headers)
            if status != 200:
                raise RuntimeError(f"console: the {side} page answered {status}: {body[:300]!r}")
    timing = Timing(case, [], [])
    for _ in range(run.settings.queue_samples):
        for side, (path, headers) in sides.items():
            status, seconds, _, _ = _request("GET", port, path, headers)
            if status != 200:
                raise RuntimeError(f"console: the {side} page answered {status} to {path}")
            getattr(timing, side).append(seconds)
    return timing


def run(run: Run) -> ScenarioResult:
    size = run.settings.queue_sizes[-1]
    with run.connect() as conn:
        have = int(conn.execute("SELECT count(*) FROM quote_request").fetchone()[0])
    if have < size:
        run.log(f"console: generating {size - have} requests (COPY)")
        newest = datetime.now(UTC) - timedelta(minutes=1) - SPACING * have
        with run.connect() as conn:
            load_queue(conn, run.factory(), size - have, newest, SPACING, run.coordinator_id)
        database.vacuum_analyze(run.settings.database_url)
        have = size
    cookie = sign_in(run)
    timings = []
    for case in CASES:
        timing = measure(run, case, cookie)
        run.log(
            f"console {have}: {case}: console p95 {ms(timing.p('console', 95))} ms,"
            f" API p95 {ms(timing.p('api', 95))} ms"
        )
        timings.append(timing)
    run.stack.check_alive()

    rows = [
        [
            t.case,
            ms(t.p("console", 50)),
            ms(t.p("console", 95)),
            ms(t.p("api", 50)),
            ms(t.p("api", 95)),
        ]
        for t in timings
    ]
    ratios: list[Ratio] = [
        at_most(
            f"{t.case}: p95 at {have:,}, console / API",
            ratio(t.p("console", 95), t.p("api", 95)),
            RATIO_TARGET,
        )
        for t in timings
    ]
    checks = [
        Check(
            f"{t.case}: console p95 at {have:,}",
            f"{ms(t.p('console', 95))} ms",
            f"< {P95_TARGET_SECONDS * 1000:.0f} ms",
            not math.isnan(t.p("console", 95)) and t.p("console", 95) < P95_TARGET_SECONDS,
        )
        for t in timings
    ]
    return ScenarioResult(
        key="console",
        title="Console: GET /console/ (the queue page)",
        summary=(
            f"{have:,} requests (the queue scenario's table). A signed-in coordinator's queue"
            " page (HTML: the page of the queue service, the saved views' counts, each bounded"
            " at 1,000, and the filter choices) against the JSON API's page for the same"
            f" filters, its floor. {run.settings.queue_samples} samples per page and side, one"
            f" request at a time on a fresh connection, alternating. Page size {LIMIT}."
        ),
        tables=[
            Table(["page", "console p50 ms", "console p95 ms", "API p50 ms", "API p95 ms"], rows)
        ],
        ratios=ratios,
        checks=checks,
        raw={"timings": [vars(t) for t in timings]},
    )
