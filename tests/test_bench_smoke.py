"""The benchmark harness works: its smoke runs every scenario and reports every ratio.

Benchmarks are never pass/fail timed tests; this only proves that `make bench`
can start what it needs, drive each scenario against its floor and write the
report. It runs `python -m bench --quick` against the test session's
PostgreSQL (a database of its own beside the tests') and Redis.

The harness drives the intake with wrk, a system tool the suite cannot bring
itself: without it the test skips, saying how to enable it. CI (`.ci/run`)
installs it, so there the test always runs.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.support.servers import Server

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ("intake", "pipeline", "queue", "end_to_end", "console")
HARNESS_TIMEOUT = 150.0
STOP_TIMEOUT = 30.0
WRK_MISSING = (
    "wrk is not installed: `sudo apt-get install wrk` (or `make bench`, which installs it) "
    "enables this test; CI (.ci/run) installs it"
)

pytestmark = pytest.mark.skipif(shutil.which("wrk") is None, reason=WRK_MISSING)


def bench_database_url(postgres: Server) -> str:
    """A database of the bench's own on the test server: the harness empties it."""
    url = make_url(postgres.url)
    return url.set(database=f"{url.database}_bench").render_as_string(hide_password=False)


def run_harness(arguments: list[str], environment: dict[str, str]) -> subprocess.CompletedProcess:
    """The harness in a subprocess; on a timeout it gets SIGTERM, so it stops what it started."""
    process = subprocess.Popen(
        [sys.executable, "-m", "bench", *arguments],
        cwd=PROJECT_ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=HARNESS_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGTERM)
        try:
            output, _ = process.communicate(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            output, _ = process.communicate()
        pytest.fail(f"the bench smoke took over {HARNESS_TIMEOUT:g} s:\n{output[-4000:]}")
    return subprocess.CompletedProcess(process.args, process.returncode, output)


@pytest.mark.timeout(HARNESS_TIMEOUT + STOP_TIMEOUT + 30)
def test_smoke_reports_every_scenario_with_its_ratio(
    postgres: Server, redis_server: Server, tmp_path: Path
) -> None:
    report, figures = tmp_path / "PERFORMANCE.md", tmp_path / "figures.json"
    environment = {
        **os.environ,
        "BENCH_DATABASE_URL": bench_database_url(postgres),
        "BENCH_REDIS_URL": redis_server.url,
    }

    result = run_harness(["--quick", "--output", str(report), "--json", str(figures)], environment)

    assert result.returncode == 0, result.stdout[-4000:]
    scenarios = json.loads(figures.read_text())["scenarios"]
    assert sorted(scenarios) == sorted(SCENARIOS)
    for key, scenario in scenarios.items():
        values = [ratio["value"] for ratio in scenario["ratios"]]
        assert values, f"{key} reported no ratio"
        assert all(v is not None and math.isfinite(v) and v > 0 for v in values), (key, values)
    text = report.read_text()
    for key, scenario in scenarios.items():
        assert f"### {scenario['title']}" in text
        for ratio in scenario["ratios"]:
            assert f"| {key} | {ratio['name']} | {ratio['value']:.2f} |" in text
    assert "CPUs (nproc)" in text and "memory" in text
