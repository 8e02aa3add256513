"""`python -m bench`: set up, run every scenario, write the report, stop what was started."""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

import psycopg
import redis

from bench import database, machine, report
from bench.bulk import Catalog
from bench.context import Run, log
from bench.profiling import Recording
from bench.results import ScenarioResult
from bench.scenarios import console, end_to_end, intake, pipeline, queue
from bench.settings import DEFAULT_DATABASE_URL, DEFAULT_REDIS_URL, SCENARIOS, Settings
from bench.stack import Stack
from tests.support.processes import PROJECT_ROOT

DEFAULT_OUTPUT = PROJECT_ROOT / "docs" / "PERFORMANCE.md"
SMOKE_OUTPUT = PROJECT_ROOT / "instance" / "bench-smoke.md"
# Run in this order: the workers are up only for the two scenarios that need
# them, and the queue's million rows come last, when nothing else writes.
RUNNERS: dict[str, Callable[[Run], ScenarioResult]] = {
    "intake": intake.run,
    "pipeline": pipeline.run,
    "end_to_end": end_to_end.run,
    "queue": queue.run,
    # Last: it pages through the queue scenario's table.
    "console": console.run,
}
NEEDS_WORKERS = {"pipeline", "end_to_end"}
PROFILED = ("api", "worker")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--quick",
        action="store_true",
        default=os.environ.get("BENCH_QUICK", "") not in ("", "0"),
        help="every scenario, tiny (the smoke; also BENCH_QUICK=1)",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL") or DEFAULT_DATABASE_URL,
        help="the bench's own database: created if missing, EMPTIED (BENCH_DATABASE_URL)",
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("BENCH_REDIS_URL") or DEFAULT_REDIS_URL,
        help="a Redis database of the bench's own: FLUSHED (BENCH_REDIS_URL)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        help=f"the Markdown report (default {DEFAULT_OUTPUT.relative_to(PROJECT_ROOT)}; with"
        f" --quick {SMOKE_OUTPUT.relative_to(PROJECT_ROOT)}, so a smoke never replaces figures)",
    )
    parser.add_argument("--json", type=Path, help="also write every figure as JSON here")
    parser.add_argument(
        "--only", help=f"comma-separated scenarios among {', '.join(SCENARIOS)}", default=""
    )
    parser.add_argument(
        "--keep-data", action="store_true", help="leave the bench database filled at the end"
    )
    parser.add_argument("--keep-logs", action="store_true", help="keep the processes' logs")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a setting of bench.settings.Settings, e.g. pipeline_requests=500",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="record the API and the worker with py-spy during each scenario (bench.profiling)",
    )
    return parser.parse_args(argv)


def make_settings(args: argparse.Namespace) -> Settings:
    scenarios = tuple(s.strip() for s in args.only.split(",") if s.strip()) or SCENARIOS
    unknown = set(scenarios) - set(SCENARIOS)
    if unknown:
        raise SystemExit(f"unknown scenarios: {', '.join(sorted(unknown))}")
    build = Settings.smoke if args.quick else Settings.full
    return build(
        args.database_url,
        args.redis_url,
        scenarios=scenarios,
        keep_data=args.keep_data,
        **parse_overrides(args.set),
    )


def parse_overrides(assignments: list[str]) -> dict[str, object]:
    """`name=value` pairs, each value parsed as the type of that setting's default."""
    defaults = {f.name: getattr(Settings.full("", ""), f.name) for f in fields(Settings)}
    overrides: dict[str, object] = {}
    for assignment in assignments:
        name, _, value = assignment.partition("=")
        if name not in defaults or name in ("quick", "database_url", "redis_url", "scenarios"):
            raise SystemExit(f"--set: no setting {name!r}")
        default = defaults[name]
        if isinstance(default, tuple):
            overrides[name] = tuple(int(item) for item in value.split(","))
        elif isinstance(default, bool):
            overrides[name] = value.lower() in ("1", "true", "yes", "on")
        else:
            overrides[name] = type(default)(value)
    return overrides


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    # Unwinds through the `finally` blocks, which stop every process started.
    raise SystemExit(128 + signum)


def setup(settings: Settings, stack: Stack, run_dir: Path) -> Run:
    client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=5)
    try:
        client.flushdb()
    except redis.RedisError as error:
        raise SystemExit(
            f"no Redis at {settings.redis_url} ({error}): start one or set BENCH_REDIS_URL"
        ) from None
    finally:
        client.close()
    try:
        database.recreate(settings.database_url)
    except psycopg.OperationalError as error:
        raise SystemExit(
            f"no PostgreSQL for {settings.database_url} ({error}): start one or set"
            " BENCH_DATABASE_URL"
        ) from None
    token = database.prepare(settings.database_url, stack.encryption_key)
    with database.connect(settings.database_url) as conn:
        catalog = Catalog.load(conn)
    return Run(
        settings, stack, run_dir, token, database.coordinator_id(settings.database_url), catalog
    )


def start_profiling(directory: Path | None, scenario: str, stack: Stack) -> list[Recording]:
    """py-spy on the project's processes (never the floors') for one scenario."""
    if directory is None:
        return []
    directory.mkdir(parents=True, exist_ok=True)
    return [
        Recording(stack.processes[name], directory / f"{scenario}-{name}.raw")
        for name in PROFILED
        if name in stack.processes
    ]


def describe_settings(settings: Settings, profiled: bool = False) -> dict[str, str]:
    return {
        **({"profiled": "yes, py-spy attached: figures perturbed"} if profiled else {}),
        "gunicorn workers": str(settings.http_workers),
        "Celery concurrency": str(settings.worker_concurrency),
        "A/B rounds": f"{settings.rounds} (pipeline {settings.pipeline_rounds}, end to end"
        f" {settings.e2e_rounds})",
        "mode": "smoke (BENCH_QUICK)" if settings.quick else "full",
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    settings = make_settings(args)
    output: Path = args.output or (SMOKE_OUTPUT if settings.quick else DEFAULT_OUTPUT)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    command = os.environ.get("BENCH_COMMAND") or shlex.join(
        ["python", "-m", "bench", *(sys.argv[1:] if argv is None else argv)]
    )
    started = time.monotonic()
    facts = machine.describe(settings.redis_url)
    run_dir = Path(tempfile.mkdtemp(prefix="quote-service-bench-"))
    stack = Stack(settings, run_dir)
    results: list[ScenarioResult] = []
    failed = True
    try:
        log(f"setting up {database.database_name(settings.database_url)}; logs in {run_dir}")
        stack.sink.start()
        run = setup(settings, stack, run_dir)
        facts["PostgreSQL"] = database.server_version(settings.database_url)
        log("starting the API and its floor under gunicorn")
        stack.start_apis()
        for name, runner in RUNNERS.items():
            if name not in settings.scenarios:
                continue
            if name in NEEDS_WORKERS and "worker" not in stack.processes:
                log("starting the workers; warming them up")
                stack.start_workers()
                pipeline.warm_up(run)
            if name not in NEEDS_WORKERS:
                stack.stop_workers()
            log(f"scenario {name}")
            recordings = start_profiling(args.profile, name, stack)
            try:
                results.append(runner(run))
            finally:
                for recording in recordings:
                    recording.stop()
        stack.stop()
        section = report.render(
            results,
            facts,
            command,
            datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            describe_settings(settings, profiled=args.profile is not None),
            time.monotonic() - started,
            machine.load_average(),
        )
        report.write(output, section)
        if args.json:
            report.write_json(
                args.json,
                {
                    "command": command,
                    "machine": facts,
                    "settings": describe_settings(settings),
                    "scenarios": {r.key: r.as_json() for r in results},
                },
            )
        log(f"report written to {output}")
        failed = False
    finally:
        stack.stop()
        stack.sink.stop()
        if not settings.keep_data:
            try:
                database.empty(settings.database_url)
            except Exception as error:  # the run's own outcome matters more
                log(f"could not empty the bench database: {error}")
        if failed or args.keep_logs:
            log(f"process logs kept in {run_dir}")
        else:
            shutil.rmtree(run_dir, ignore_errors=True)
    return 0
