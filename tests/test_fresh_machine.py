"""`make test` on a fresh machine: a test that needs a system tool we do not bring skips.

The suite installs or starts everything it needs (the Python packages,
throwaway PostgreSQL and Redis); the few checks that need a system tool
(wrk for the bench smoke, Chromium for the browser test, redis-server for the
test that kills Redis) skip without it, with a reason that says how to enable
them, rather than fail a clean clone.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def run_pytest_without_tools(test_file: str, empty_path: Path) -> subprocess.CompletedProcess:
    """pytest on one file with a PATH that holds no program at all (so no wrk)."""
    environment = {**os.environ, "PATH": str(empty_path)}
    return subprocess.run(
        [sys.executable, "-m", "pytest", test_file, "-rs", "-q", "-p", "no:cacheprovider"],
        cwd=PROJECT_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.timeout(90)
def test_the_bench_smoke_skips_without_wrk_and_says_how_to_enable_it(tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()

    result = run_pytest_without_tools("tests/test_bench_smoke.py", empty)

    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "1 skipped" in output, output[-3000:]
    assert "wrk is not installed" in output and "apt-get install wrk" in output, output[-3000:]
