"""deploy/caddy/Caddyfile, run by a real Caddy in front of the real app.

The stack's Caddyfile is run as it is; only the variables it reads for that
purpose move it to free ports on 127.0.0.1 and point it at an app served here.
It must serve HTTPS for `localhost` from its internal CA, send HSTS, redirect
plain HTTP, forward the public paths and nothing else, and give the API a
client address it cannot be fooled about (TRUSTED_PROXY_COUNT=1).
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest
from flask import Flask
from werkzeug.serving import make_server

from tests.conftest import base_config
from tests.payloads import valid_body
from tests.support.servers import Server, free_port

ROOT = Path(__file__).resolve().parent.parent
CADDYFILE = ROOT / "deploy" / "caddy" / "Caddyfile"
CADDY = shutil.which("caddy")
START_SECONDS = 30

pytestmark = pytest.mark.skipif(
    CADDY is None, reason="Caddy is missing: apt-get install caddy (.ci/run does it as root)"
)

FORWARDED = [
    "/api/v1/catalog",
    "/healthz",
    "/readyz",
    "/form",
    "/form/en",
    "/static/form/form.css",
    "/clinic/invitations/some-token",
    "/p/some-token",
    "/console/",
    "/console/login",
]
BLOCKED = [
    "/metrics",
    "/docs",
    "/openapi.json",
    "/api",
    "/apiv1/catalog",
    "/formx",
    "/static/x.js",
    "/static/vendor/swagger-ui/swagger-ui.css",
    "/static/formx/a.js",
    "/clinic",
    "/healthz/extra",
]


@dataclass
class Proxy:
    https_port: int
    http_port: int
    operator_port: int
    context: ssl.SSLContext

    def get(self, path: str, **headers: str) -> http.client.HTTPResponse:
        return self.request("GET", path, headers=headers)

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict | None = None
    ) -> http.client.HTTPResponse:
        # "localhost": the name the certificate is for; checked against the internal CA.
        connection = http.client.HTTPSConnection(
            "localhost", self.https_port, context=self.context, timeout=10
        )
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        response.read()
        connection.close()
        return response


@pytest.fixture(scope="module")
def upstream(postgres: Server, app: Flask) -> Iterator[int]:
    """The app behind the proxy, as the stack runs it: one trusted proxy, a tight intake limit."""
    from quote_service import create_app
    from quote_service.extensions import db

    behind = create_app(
        base_config(postgres.url, TRUSTED_PROXY_COUNT=1, RATE_LIMIT_INTAKE="2/minute")
    )
    server = make_server("127.0.0.1", 0, behind, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_port
    server.shutdown()
    thread.join(timeout=10)
    with behind.app_context():
        db.engine.dispose()


@pytest.fixture(scope="module")
def proxy(upstream: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    assert CADDY is not None
    home = tmp_path_factory.mktemp("caddy")
    https_port, http_port, operator_port = free_port(), free_port(), free_port()
    environment = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_CONFIG_HOME": str(home / "config"),
        "HTTPS_PORT": str(https_port),
        "HTTP_PORT": str(http_port),
        "CADDY_ADMIN": "off",
        "API_UPSTREAM": f"127.0.0.1:{upstream}",
        # The operators' sites, on ports of their own, with nothing behind them.
        "MAILPIT_UI_PORT": str(operator_port),
        "MAILPIT_UPSTREAM": f"127.0.0.1:{free_port()}",
        "PROMETHEUS_UI_PORT": str(free_port()),
        "GRAFANA_UI_PORT": str(free_port()),
    }
    log = (home / "caddy.log").open("w")
    process = subprocess.Popen(
        [CADDY, "run", "--config", str(CADDYFILE), "--adapter", "caddyfile"],
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    root = home / "data" / "caddy" / "pki" / "authorities" / "local" / "root.crt"
    try:
        context = wait_for_tls(https_port, root, process, home / "caddy.log")
        yield Proxy(https_port, http_port, operator_port, context)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def wait_for_tls(port: int, root: Path, process: subprocess.Popen, log: Path) -> ssl.SSLContext:
    """Caddy's internal CA's context once it answers on `port`; bounded by START_SECONDS."""
    deadline = time.monotonic() + START_SECONDS
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"caddy exited: {log.read_text()}")
        if root.exists():
            try:
                context = ssl.create_default_context(cafile=str(root))
                connection = http.client.HTTPSConnection(
                    "localhost", port, context=context, timeout=2
                )
                connection.request("GET", "/healthz")
                connection.getresponse().read()
                connection.close()
                return context
            except (OSError, ssl.SSLError) as error:
                last_error = error
        time.sleep(0.1)
    pytest.fail(
        f"caddy did not serve HTTPS within {START_SECONDS} s: {last_error}\n{log.read_text()}"
    )


def reached_the_api(response: http.client.HTTPResponse) -> bool:
    # The app sets X-Request-ID on every answer; Caddy's own 404 has none.
    return response.getheader("X-Request-ID") is not None


def test_localhost_is_served_over_https_by_the_internal_ca(proxy: Proxy):
    response = proxy.get("/healthz")
    assert response.status == 200
    # A client that trusts only the system's CAs refuses the certificate.
    connection = http.client.HTTPSConnection(
        "localhost", proxy.https_port, context=ssl.create_default_context(), timeout=5
    )
    with pytest.raises(ssl.SSLCertVerificationError):
        connection.request("GET", "/healthz")
    connection.close()


@pytest.mark.parametrize("path", ["/healthz", "/api/v1/catalog", "/metrics", "/nothing"])
def test_every_answer_carries_hsts(proxy: Proxy, path: str):
    hsts = proxy.get(path).getheader("Strict-Transport-Security")
    assert hsts is not None
    directives = dict(part.strip().partition("=")[::2] for part in hsts.split(";") if part.strip())
    assert int(directives["max-age"]) >= 31536000
    assert "includeSubDomains" in directives


def test_plain_http_is_redirected_to_https(proxy: Proxy):
    connection = http.client.HTTPConnection("127.0.0.1", proxy.http_port, timeout=5)
    connection.request("GET", "/api/v1/catalog", headers={"Host": "localhost"})
    response = connection.getresponse()
    connection.close()
    assert response.status in (301, 308)
    assert response.getheader("Location", "").startswith("https://localhost")


@pytest.mark.parametrize("path", FORWARDED)
def test_the_public_paths_reach_the_api(proxy: Proxy, path: str):
    response = proxy.get(path)
    assert reached_the_api(response), (path, response.status)
    assert response.status != 502


def test_the_api_answers_through_the_proxy(proxy: Proxy):
    assert proxy.get("/api/v1/catalog").status == 200
    assert proxy.get("/healthz").status == 200


@pytest.mark.parametrize("path", BLOCKED)
def test_nothing_else_reaches_the_api(proxy: Proxy, path: str):
    response = proxy.get(path)
    assert response.status == 404
    assert not reached_the_api(response), path


def test_console_without_its_slash_is_redirected(proxy: Proxy):
    response = proxy.get("/console")
    assert response.status == 308
    assert response.getheader("Location") == "/console/"


def test_the_bare_address_leads_to_the_form(proxy: Proxy):
    response = proxy.get("/")
    assert response.status == 302
    assert response.getheader("Location") == "/form"
    assert not reached_the_api(response)


class _Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("href", "src", "action") and value and value.startswith("/"):
                self.urls.append(value.split("?")[0].split("#")[0])


@pytest.mark.parametrize("page", ["/form/en", "/console/login"])
def test_everything_a_public_page_links_to_is_forwarded(proxy: Proxy, page: str):
    connection = http.client.HTTPSConnection(
        "localhost", proxy.https_port, context=proxy.context, timeout=10
    )
    connection.request("GET", page)
    response = connection.getresponse()
    page = response.read().decode()
    connection.close()
    assert response.status == 200
    parser = _Assets()
    parser.feed(page)
    assets = [url for url in parser.urls if "/static/" in url]
    assert assets or page.startswith("/console/"), "the form's stylesheet and script"
    for url in set(parser.urls):
        answer = proxy.get(url)
        assert reached_the_api(answer), url
        if url in assets:
            assert answer.status == 200, url


def test_a_forged_forwarded_for_does_not_escape_the_rate_limit(proxy: Proxy, app: Flask):
    # Caddy replaces the client's X-Forwarded-For with the real address, and the
    # API trusts one proxy: each forged address is still this one client.
    statuses = []
    for number in range(3):
        response = proxy.request(
            "POST",
            "/api/v1/quote-requests",
            body=json.dumps(valid_body(email=f"proxy.{number}@example.org")).encode(),
            headers={
                "Content-Type": "application/json",
                "X-Forwarded-For": f"203.0.113.{number + 1}",
            },
        )
        statuses.append(response.status)
    assert statuses == [201, 201, 429]


def test_the_operators_sites_forward_to_their_services(proxy: Proxy):
    # The site answers (plain HTTP, for the loopback-only port); its service is not running.
    connection = http.client.HTTPConnection("127.0.0.1", proxy.operator_port, timeout=5)
    connection.request("GET", "/")
    response = connection.getresponse()
    connection.close()
    assert response.status == 502
