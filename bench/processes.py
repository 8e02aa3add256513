"""Processes a run starts (gunicorn, Celery workers), each stopped by the run that started it."""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

#: The project root: gunicorn and `celery -A worker` import from here.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
POLL_SECONDS = 0.05
STOP_TIMEOUT = 20.0
KILL_TIMEOUT = 10.0
_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:
    """In the child: SIGTERM it when the harness dies, so nothing outlives a killed run."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass  # not Linux: the harness's own cleanup still stops it


class ManagedProcess:
    """One long-running command in its own process group, logging to a file."""

    def __init__(
        self, name: str, command: Sequence[str], environment: Mapping[str, str], log_path: Path
    ) -> None:
        self.name = name
        self.command = list(command)
        self.environment = dict(environment)
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> ManagedProcess:
        with open(self.log_path, "ab") as log_file:
            self._process = subprocess.Popen(
                self.command,
                cwd=PROJECT_ROOT,
                env=self.environment,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        return self

    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def terminate(self) -> None:
        """Ask for a warm shutdown (SIGTERM to the group) without waiting for it."""
        if self._process is not None and self._process.returncode is None:
            try:
                os.killpg(self._process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def stop(self) -> None:
        """SIGTERM (warm shutdown) bounded by `STOP_TIMEOUT`, then SIGKILL the whole group."""
        process = self._process
        if process is None or process.returncode is not None:
            return
        self.terminate()
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pass
        # Pool children (gunicorn workers, Celery's prefork) must not outlive their leader.
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if process.returncode is None:
            process.wait(KILL_TIMEOUT)

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def child_pids(self) -> list[int]:
        """Pids of the process group (the leader and its pool), for profilers."""
        if self.pid is None:
            return []
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if os.getpgid(int(entry.name)) == self.pid:
                    pids.append(int(entry.name))
            except (ProcessLookupError, PermissionError):
                continue
        return sorted(pids)


def wait_until(condition: Callable[[], bool], timeout: float, step: float = POLL_SECONDS) -> bool:
    """Poll `condition` until it holds or `timeout` seconds pass; return whether it held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()


def http_ok(url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return 200 <= response.status < 300
    except (urllib.error.URLError, OSError):
        return False


def wait_http(process: ManagedProcess, url: str, timeout: float = 60.0) -> None:
    """Block until `url` answers 2xx; fail with the process's log if it dies or never does."""

    def ready() -> bool:
        if not process.alive():
            raise RuntimeError(f"{process.name} exited at start:\n{process.log_tail()}")
        return http_ok(url)

    if not wait_until(ready, timeout, step=0.1):
        raise RuntimeError(
            f"{process.name} did not answer {url} within {timeout:g} s:\n{process.log_tail()}"
        )
