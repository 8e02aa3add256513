"""Processes the tests and the bench start, and what they need to know about processes.

`ManagedProcess` is the one supervisor: a long-running command in its own process
group, logging to a file, stopped warm (SIGTERM, bounded) and then killed with its
whole group, so pool children never outlive it. Its leader is never reaped before
the group is killed, so the group id cannot be reused by an unrelated process.
`tests.support.worker_process.WorkerProcess` is one of these running Celery.

The /proc helpers work on Linux only (where the suite and the bench run).
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from tests.support.polling import POLL_INTERVAL, wait_until

log = logging.getLogger(__name__)

#: The project root: gunicorn and `celery -A worker` import from here.
PROJECT_ROOT = Path(__file__).resolve().parents[2]
#: Seconds a warm shutdown (SIGTERM) may take before the process group is killed.
STOP_TIMEOUT = 20.0
#: Seconds to reap a process after SIGKILL.
KILL_TIMEOUT = 10.0
_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listened on a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def process_alive(pid: int) -> bool:
    """Whether `pid` is a live process (zombies count as dead: init may never reap them)."""
    stat = Path(f"/proc/{pid}/stat")
    if Path("/proc/self/stat").exists():
        try:
            text = stat.read_text()
        except OSError:
            return False
        return text[text.rindex(")") + 2 :].split()[0] not in ("Z", "X", "x")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def child_pids(pid: int) -> list[int]:
    """The processes whose parent is `pid` (from /proc; empty elsewhere), sorted."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue  # gone meanwhile
        # The command name (in parentheses) may hold spaces: split after it.
        fields = text[text.rindex(")") + 2 :].split()
        if len(fields) > 1 and fields[1] == str(pid):
            children.append(int(stat.parent.name))
    return sorted(children)


def command_line(pid: int) -> list[str]:
    """The arguments of `pid` ([] if it is gone)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return raw.decode(errors="replace").split("\0")[:-1]


def thread_count(pid: int) -> int:
    """How many threads the process runs (its /proc tasks)."""
    return len(list(Path(f"/proc/{pid}/task").iterdir()))


def send_signal(pid: int, signum: int) -> None:
    """Signal `pid`, unless it is gone already."""
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def end_process(pid: int, signum: int | None, timeout: float) -> None:
    """Send `signum` (if any) to `pid` (not our child), wait up to `timeout` s, then SIGKILL."""
    if signum is not None:
        send_signal(pid, signum)
    if wait_until(lambda: not process_alive(pid), timeout, POLL_INTERVAL):
        return
    log.warning("process %s did not exit, killing it", pid)
    send_signal(pid, signal.SIGKILL)
    wait_until(lambda: not process_alive(pid), timeout, POLL_INTERVAL)


def http_ok(url: str, timeout: float = 1.0) -> bool:
    """Whether `url` answers 2xx."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return 200 <= response.status < 300
    except (urllib.error.URLError, OSError):
        return False


def _die_with_parent() -> None:
    """In the child: SIGTERM it when its parent dies, so nothing outlives a killed run."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass  # not Linux: the parent's own cleanup still stops it


class ManagedProcess:
    """One long-running command in its own process group, logging to a file.

    Args:
        signal_group: whether the warm shutdown's SIGTERM goes to the whole group
            (gunicorn, the bench's workers) or to the leader only, which then stops its
            pool itself (a Celery worker's warm shutdown, as a deployment does it).
        die_with_parent: SIGTERM the process when the one that started it dies (Linux).
    """

    #: Sent to the leader when it ignored SIGTERM, before its processes are listed
    #: in the log (Celery logs every thread's stack on SIGUSR1); None sends nothing.
    hang_signal: int | None = None

    def __init__(
        self,
        name: str,
        command: Sequence[str],
        environment: Mapping[str, str],
        log_path: Path,
        *,
        signal_group: bool = True,
        die_with_parent: bool = False,
    ) -> None:
        self.name = name
        self.command = list(command)
        self.environment = dict(environment)
        self.log_path = log_path
        self.signal_group = signal_group
        self.die_with_parent = die_with_parent
        self._process: subprocess.Popen[bytes] | None = None
        #: Whether the last `stop()` ended by itself, within STOP_TIMEOUT.
        self.stopped_warm: bool | None = None
        #: The command lines of its processes still there when a warm stop timed out.
        self.left_after_term: list[list[str]] = []

    @property
    def pid(self) -> int | None:
        """The leader's pid while it runs, else None."""
        if self._process is None or self._exited():
            return None
        return self._process.pid

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
                preexec_fn=_die_with_parent if self.die_with_parent else None,
            )
        return self

    def _exited(self) -> bool:
        """Whether the leader has exited, without reaping it.

        Left unreaped, its pid stays its process group's id, so signalling the
        group afterwards can only reach this process's own children.
        """
        assert self._process is not None
        if self._process.returncode is not None:
            return True
        flags = os.WEXITED | os.WNOHANG | os.WNOWAIT
        return os.waitid(os.P_PID, self._process.pid, flags) is not None

    def alive(self) -> bool:
        return self._process is not None and not self._exited()

    def terminate(self) -> None:
        """Ask for a warm shutdown (SIGTERM) without waiting for it."""
        process = self._process
        if process is None or self._exited():
            return
        try:
            if self.signal_group:
                os.killpg(process.pid, signal.SIGTERM)
            else:
                os.kill(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass

    def stop(self) -> None:
        """Warm shutdown (SIGTERM), bounded by `STOP_TIMEOUT`; then kill what is left."""
        self._end(graceful=True)

    def kill(self) -> None:
        """SIGKILL the process group and reap it: a crash, no shutdown code runs."""
        self._end(graceful=False)

    def _end(self, graceful: bool) -> None:
        process = self._process
        if process is None or process.returncode is not None:
            return
        if graceful and not self._exited():
            self.terminate()
            wait_until(self._exited, STOP_TIMEOUT, POLL_INTERVAL)
            self.stopped_warm = self._exited()
            if not self.stopped_warm:
                self._record_hang(process.pid)
        # The leader is not reaped yet, so the group id is still this process's:
        # pool children (or a leader that ignored SIGTERM) must not outlive it.
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(KILL_TIMEOUT)

    def _record_hang(self, pid: int) -> None:
        """Leave in the log what a process that did not stop was doing.

        The process tree says which of its processes are still there and where the
        kernel has them waiting; `hang_signal` may make the leader tell more itself.
        """
        if self.hang_signal is not None:
            try:
                os.kill(pid, self.hang_signal)
            except ProcessLookupError:
                return
            time.sleep(1.0)  # what it tells is written by the process itself: let it
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
        """Poll `condition` until it holds; fail at once, with the log, if the process dies."""

        def holds() -> bool:
            if condition():
                return True
            if self.pid is None:
                raise AssertionError(f"the {self.name} died waiting for {what}:\n{self.log_tail()}")
            return False

        if not wait_until(holds, timeout, POLL_INTERVAL):
            raise AssertionError(
                f"no {what} within {timeout:g} s; {self.name} log:\n{self.log_tail()}"
            )

    def wait_http(self, url: str, timeout: float = 60.0) -> None:
        """Block until `url` answers 2xx; fail with the log if the process dies or never does."""

        def ready() -> bool:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited at start:\n{self.log_tail()}")
            return http_ok(url)

        if not wait_until(ready, timeout, step=0.1):
            raise RuntimeError(
                f"{self.name} did not answer {url} within {timeout:g} s:\n{self.log_tail()}"
            )

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 30) -> str:
        """The end of the log, for error and assertion messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return f"(no {self.name} log)"
        return "\n".join(text.splitlines()[-lines:])
