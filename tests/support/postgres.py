"""PostgreSQL for the test suite: the configured server, or a throwaway one.

The server at ``TEST_DATABASE_URL`` (default below) when it answers; else a throwaway
cluster from the machine's binaries (``initdb``/``pg_ctl``/``postgres`` on ``PATH`` or
under ``/usr/lib/postgresql/*/bin``); else one from the pip-installable ``pgserver``.
Every wait is bounded by a deadline.
"""

from __future__ import annotations

import math
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from tests.support.polling import wait_until
from tests.support.processes import (
    child_pids,
    command_line,
    end_process,
    free_port,
    process_alive,
    send_signal,
)
from tests.support.server_base import (
    ORIGIN_BINARY,
    ORIGIN_CONFIGURED,
    ORIGIN_PIP,
    PIP_HINT,
    START_ATTEMPTS,
    STOP_TIMEOUT,
    Server,
    StartError,
    importable,
    log,
    recreate_dir,
    redact,
    tail,
    track,
    untrack,
)

DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/quote_service_test"

#: Database created in throwaway PostgreSQL servers.
DATABASE_NAME = "quote_service_test"
#: Database role created by ``initdb -U`` (and the one pgserver uses).
PG_SUPERUSER = "postgres"
#: Operating-system account that runs PostgreSQL when the tests run as root.
PG_SYSTEM_USER = "postgres"
#: Where Debian/Ubuntu install one ``bin`` directory per PostgreSQL major version.
PG_LIB_ROOT = Path("/usr/lib/postgresql")

INITDB_TIMEOUT = 120.0
#: Seconds given to ``pg_ctl -w -t``; the subprocess itself gets a few more.
PG_CTL_TIMEOUT = 30
#: A unix socket path must fit ``sun_path`` (108 bytes on Linux, 104 on macOS).
_MAX_SOCKET_PATH = 100
_PG_SCHEME = re.compile(r"^postgres(?:ql)?(?:\+[a-z0-9_]+)?://", re.IGNORECASE)
_PG_PROGRAMS = ("initdb", "pg_ctl", "postgres")


def configured_database_url() -> str:
    """``TEST_DATABASE_URL`` (as a ``postgresql+psycopg://`` URL) or the default."""
    return _sqlalchemy_url(os.environ.get("TEST_DATABASE_URL") or DEFAULT_DATABASE_URL)


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
    log.debug("PostgreSQL at %s does not answer: %s", redact(url), error)
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


def postgres_binary_problem(binaries: PostgresBinaries | None) -> str | None:
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
            if not pid or str(self.data_dir) not in " ".join(command_line(pid)):
                return None
        return pid if process_alive(pid) else None

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
            raise StartError(
                f"pg_ctl start on port {port} failed (status {status}):\n{output.strip()}\n"
                f"--- {self.log_path} ---\n{tail(self.log_path)}"
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
        untrack(self)

    def kill(self) -> None:
        """SIGKILL the postmaster and its backends; return once they are gone."""
        pid = self.pid
        if pid is None:
            return
        victims = [pid, *child_pids(pid)]
        for victim in victims:
            send_signal(victim, signal.SIGKILL)
        if not wait_until(lambda: not any(map(process_alive, victims)), STOP_TIMEOUT):
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
        track(self)


def _stop_stale_cluster(binaries: PostgresBinaries, data_dir: Path) -> None:
    """Stop a server a previous, interrupted run may have left running on `data_dir`."""
    if (data_dir / "postmaster.pid").exists():
        cmd = [str(binaries.pg_ctl), "-D", str(data_dir), "-m", "immediate", "-w", "-t", "10"]
        _run(_as_pg_user([*cmd, "stop"]), 20.0)


def _start_postgres_binary(binaries: PostgresBinaries, workdir: Path) -> PostgresBinaryServer:
    """initdb a fresh cluster in ``workdir/pg``, start it on a free port, create the database."""
    data_dir = workdir / "pg"
    _stop_stale_cluster(binaries, data_dir)
    recreate_dir(data_dir)
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
        except StartError as exc:
            errors.append(str(exc))
    else:
        server.stop()
        raise RuntimeError("\n".join(errors))
    track(server)
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
        if pid and process_alive(pid):
            log.warning("pgserver left postmaster %s running; shutting it down", pid)
            end_process(pid, signal.SIGINT, STOP_TIMEOUT)
        untrack(self)


def _start_pgserver(workdir: Path) -> PgserverServer:
    data_dir = recreate_dir(workdir / "pgserver")
    # pgserver warns at import when XDG_RUNTIME_DIR is unset (platformdirs), which the test
    # suite's filterwarnings=error would turn into a failure.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

        handle = pgserver.get_server(data_dir, cleanup_mode="stop")
    server = PgserverServer(_sqlalchemy_url(handle.get_uri(DATABASE_NAME)), handle)
    track(server)
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
                f"PostgreSQL answers at {redact(url)} but its database cannot be created: {exc}"
            ) from exc
        log.info("using the configured PostgreSQL at %s", redact(url))
        return Server(url, ORIGIN_CONFIGURED)

    failures = [f"nothing answers at TEST_DATABASE_URL={redact(url)}"]
    binaries = find_postgres_binaries()
    problem = postgres_binary_problem(binaries)
    if binaries is not None and problem is None:
        try:
            return _start_postgres_binary(binaries, workdir)
        except (RuntimeError, OSError, psycopg.Error) as exc:
            log.warning("could not start PostgreSQL from %s: %s", binaries.postgres, exc)
            failures.append(f"starting {binaries.postgres} failed: {exc}")
    else:
        failures.append(str(problem))
    if importable("pgserver"):
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
