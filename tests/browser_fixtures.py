"""Fixtures for tests that drive Debian's Chromium (never a downloaded browser).

`chromium` is one browser per test module (launching is the slow part);
`live_app` serves an app built with extra settings on a free loopback port.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask
from werkzeug.serving import make_server

from tests.conftest import base_config
from tests.support.servers import Server

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # only the browser tests need it; they skip without it
    sync_playwright = None

if TYPE_CHECKING:
    from playwright.sync_api import Browser

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Bounds every wait of a browser step: a broken page fails in seconds, not at pytest's timeout.
STEP_TIMEOUT_MS = 10_000


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    if sync_playwright is None:
        pytest.skip("the playwright Python package is not installed (pip install -e '.[dev]')")
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM}; these tests never download a browser")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def live_app(
    make_app: Callable[[dict[str, Any]], Flask],
    postgres: Server,
    app: Flask,  # migrates and seeds the database, and empties it after the test
) -> Iterator[Callable[..., str]]:
    """Start an app with `overrides` on 127.0.0.1 in a thread; return its base URL."""
    running: list[tuple[Any, threading.Thread]] = []

    def start(**overrides: Any) -> str:
        served = make_app(base_config(postgres.url, **overrides))
        server = make_server("127.0.0.1", 0, served, threaded=True)
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        thread.start()
        running.append((server, thread))
        return f"http://127.0.0.1:{server.server_port}"

    yield start
    for server, thread in reversed(running):
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        assert not thread.is_alive(), f"{server!r} did not stop"
