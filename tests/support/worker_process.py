"""A real `celery -A worker worker` in a subprocess, for tests that kill or starve it.

The `worker` package builds its Flask app from the environment, so the process is
configured the way a deployment configures it: DATABASE_URL, REDIS_URL, SMTP_* and
the outbox timings. It runs in its own process group, so `kill()` takes the whole
worker (and any pool children) down at once, like a node dying.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

#: The project root, where `celery -A worker` finds the `worker` package.
PROJECT_ROOT = Path(__file__).resolve().parents[2]
#: Seconds a warm shutdown (SIGTERM) may take before the worker is killed.
STOP_TIMEOUT = 20.0
KILL_TIMEOUT = 10.0
POLL_INTERVAL = 0.05


def worker_environment(
    database_url: str,
    redis_url: str,
    smtp_host: str,
    smtp_port: int,
    **overrides: str | int | float | None,
) -> dict[str, str]:
    """The environment of a worker process: this one's, plus the service's settings.

    Defaults keep fault tests quick: a relay round every 0.2 s, a 5 s lease and
    sub-second retry backoff. An override of None leaves the variable unset, so
    the service's own default applies (a test of a promise the defaults make).
    """
    settings: dict[str, str | int | float | None] = {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "SMTP_HOST": smtp_host,
        "SMTP_PORT": smtp_port,
        "SMTP_TIMEOUT_SECONDS": 10,
        "OUTBOX_RELAY_SECONDS": 0.2,
        "OUTBOX_LEASE_SECONDS": 5,
        "NOTIFICATION_RETRY_BASE_SECONDS": 0.2,
        "NOTIFICATION_RETRY_MAX_SECONDS": 1,
        "ACKNOWLEDGEMENTS_PER_RECIPIENT_PER_DAY": 1000,
        "COORDINATORS_EMAIL": "coordinators@quote-service.example",
        "QUOTE_FANOUT": 1,
        **overrides,
    }
    environment = {**os.environ, **{name: str(value) for name, value in settings.items()}}
    return {
        name: value
        for name, value in environment.items()
        if not (name in settings and settings[name] is None)
    }


def child_pids(pid: int) -> list[int]:
    """The processes whose parent is `pid` (from /proc)."""
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        # The command name (in parentheses) may hold spaces: split after it.
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == pid:
            children.append(int(entry.name))
    return sorted(children)


def command_line(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]
    except OSError:
        return []


def thread_count(pid: int) -> int:
    """How many threads the process runs (its /proc tasks)."""
    return len(list(Path(f"/proc/{pid}/task").iterdir()))


class WorkerProcess:
    """One `celery -A worker worker` process (solo pool unless `concurrency` > 1)."""

    def __init__(
        self,
        environment: Mapping[str, str],
        log_path: Path,
        concurrency: int = 1,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.environment = dict(environment)
        self.log_path = log_path
        self.concurrency = concurrency
        self.extra_args = list(extra_args)
        self._process: subprocess.Popen[bytes] | None = None
        #: Whether the last `stop()` ended by itself, within STOP_TIMEOUT.
        self.stopped_warm: bool | None = None
        #: The command lines of the worker's processes still there when a warm stop timed out.
        self.left_after_term: list[list[str]] = []

    @property
    def pid(self) -> int | None:
        if self._process is None or self._exited():
            return None
        return self._process.pid

    def _exited(self) -> bool:
        """Whether the main process has exited, without reaping it.

        Left unreaped, its pid stays its process group's id, so signalling the
        group afterwards can only reach this worker's own processes.
        """
        assert self._process is not None
        if self._process.returncode is not None:
            return True
        flags = os.WEXITED | os.WNOHANG | os.WNOWAIT
        return os.waitid(os.P_PID, self._process.pid, flags) is not None

    def start(self) -> WorkerProcess:
        pool = (
            ["--pool=solo"] if self.concurrency == 1 else ["--concurrency", str(self.concurrency)]
        )
        command = [sys.executable, "-m", "celery", "-A", "worker", "worker", *pool]
        # A unique node name: a killed worker and its replacement must not look alike.
        command += ["-n", f"faults-{uuid.uuid4().hex[:8]}@%h", "--loglevel=WARNING"]
        command += ["--without-mingle", "--without-gossip", *self.extra_args]
        with open(self.log_path, "ab") as log_file:
            self._process = subprocess.Popen(
                command,
                cwd=PROJECT_ROOT,
                env=self.environment,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def kill(self) -> None:
        """SIGKILL the worker's process group and reap it: a crash, no shutdown code runs."""
        self._end(graceful=False)

    def stop(self) -> None:
        """Warm shutdown (SIGTERM), bounded by `STOP_TIMEOUT`; then kill what is left."""
        self._end(graceful=True)

    def _end(self, graceful: bool) -> None:
        process = self._process
        if process is None or process.returncode is not None:
            return
        if graceful and not self._exited():
            process.terminate()
            deadline = time.monotonic() + STOP_TIMEOUT
            while not self._exited() and time.monotonic() < deadline:
                time.sleep(POLL_INTERVAL)
            self.stopped_warm = self._exited()
            if not self.stopped_warm:
                self._record_hang(process.pid)
        # The leader is not reaped yet, so the group id is still this worker's:
        # pool children (or a worker that ignored SIGTERM) must not outlive the test.
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(KILL_TIMEOUT)

    def _record_hang(self, pid: int) -> None:
        """Leave in the log what a worker that did not stop was doing.

        SIGUSR1 makes Celery's main process log every thread's stack; the
        process tree says which of its processes are still there and where
        the kernel has them waiting.
        """
        try:
            os.kill(pid, signal.SIGUSR1)
        except ProcessLookupError:
            return
        time.sleep(1.0)  # the stacks are written by the worker itself: let it
        lines = ["processes left after SIGTERM:"]
        for each in [pid, *child_pids(pid)]:
            try:
                state = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()[0]
                wchan = Path(f"/proc/{each}/wchan").read_text()
            except OSError:
                continue
            self.left_after_term.append(command_line(each))
            lines.append(f"  {each} {state} {wchan} {' '.join(command_line(each))}")
        with open(self.log_path, "a") as log_file:
            log_file.write("\n".join(lines) + "\n")

    def wait_for(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        """Poll `condition` until it holds; fail at once, with the log, if the worker dies."""
        deadline = time.monotonic() + timeout
        while not condition():
            if self.pid is None:
                raise AssertionError(f"the worker died waiting for {what}:\n{self.log_tail()}")
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"no {what} within {timeout:g} s; worker log:\n{self.log_tail()}"
                )
            time.sleep(POLL_INTERVAL)

    def relay_pids(self) -> list[int]:
        """The worker's outbox relay processes (`python -m worker.relay`), if any."""
        assert self._process is not None
        return [
            pid
            for pid in child_pids(self._process.pid)
            if command_line(pid)[1:3] == ["-m", "worker.relay"]
        ]

    def pool_pids(self) -> list[int]:
        """The worker's pool children (every child that is not its relay)."""
        assert self._process is not None
        relay = set(self.relay_pids())
        return [pid for pid in child_pids(self._process.pid) if pid not in relay]

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 30) -> str:
        """The end of the worker's log, for assertion messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no worker log)"
        return "\n".join(text.splitlines()[-lines:])
