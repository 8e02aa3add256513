"""The API as deployed: `gunicorn "quote_service:create_app()"` with the repository's
gunicorn.conf.py, on 127.0.0.1. Slow clients do not starve it; a chunked body over
the limit is a 413."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.payloads import minimal_body
from tests.support.servers import Server, free_port

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
URL = "/api/v1/quote-requests"
BODY_TIMEOUT_SECONDS = 2


@dataclass
class Gunicorn:
    port: int

    def connect(self, timeout: float) -> socket.socket:
        return socket.create_connection((HOST, self.port), timeout=timeout)

    def status_of(
        self, method: str, path: str, body: str | None = None, headers: dict[str, str] | None = None
    ) -> int:
        """One request on a connection of its own (5 s timeout); its status."""
        connection = http.client.HTTPConnection(HOST, self.port, timeout=5)
        try:
            connection.request(method, path, body, headers or {})
            response = connection.getresponse()
            response.read()
            return response.status
        finally:
            connection.close()


def wait_until_serving(process: subprocess.Popen, port: int, deadline_seconds: float) -> None:
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"gunicorn exited with {process.returncode}")
        connection = http.client.HTTPConnection(HOST, port, timeout=1)
        try:
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.1)
        finally:
            connection.close()
    raise AssertionError("gunicorn did not start serving in time")


@pytest.fixture(scope="module")
def gunicorn(postgres: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gunicorn]:
    """One worker process, as configured by gunicorn.conf.py (picked up from the root)."""
    port = free_port()
    log = tmp_path_factory.mktemp("gunicorn") / "gunicorn.log"
    env = {
        **os.environ,
        "DATABASE_URL": postgres.url,
        "REDIS_URL": "",
        "RATE_LIMIT_INTAKE": "100000/minute",
        "RATE_LIMIT_INTAKE_ATTEMPTS": "100000/minute",
        "WEB_CONCURRENCY": "1",
        "GUNICORN_BODY_TIMEOUT": str(BODY_TIMEOUT_SECONDS),
    }
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                f"--bind={HOST}:{port}",
                "quote_service:create_app()",
            ],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until_serving(process, port, deadline_seconds=30)
        yield Gunicorn(port)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def open_slow_body(server: Gunicorn) -> socket.socket:
    """A client that sends its headers and half its body, then goes quiet."""
    sock = server.connect(timeout=30)
    sock.sendall(
        f"POST {URL} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
        "Content-Length: 1000\r\n\r\n".encode()
    )
    sock.sendall(b'{"full_name": "' + b"x" * 480)
    return sock


def status_line(sock: socket.socket) -> str:
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data.split(b"\r\n", 1)[0].decode()


def timed(call: Callable[[], int]) -> tuple[float, int]:
    started = time.monotonic()
    status = call()
    return time.monotonic() - started, status


def test_ten_slow_bodies_leave_healthz_and_the_intake_answering(app, gunicorn):
    # Opened first, so the server accepts them before the probes (one accept queue).
    slow = [open_slow_body(gunicorn) for _ in range(10)]
    try:

        def healthz() -> int:
            return gunicorn.status_of("GET", "/healthz")

        def post() -> int:
            body = json.dumps(minimal_body(destination="BE"))
            return gunicorn.status_of("POST", URL, body, {"Content-Type": "application/json"})

        health_seconds, health_status = timed(healthz)
        post_seconds, post_status = timed(post)
        assert health_status == 200
        assert health_seconds < 1.0
        assert post_status == 201
        assert post_seconds < 1.0

        # The stalled bodies are given up after the body timeout, freeing their threads.
        started = time.monotonic()
        for sock in slow:
            sock.settimeout(BODY_TIMEOUT_SECONDS + 8)
            assert status_line(sock).startswith("HTTP/1.1 400")
        assert time.monotonic() - started < BODY_TIMEOUT_SECONDS + 8
    finally:
        for sock in slow:
            sock.close()


def send_chunked(server: Gunicorn, body: bytes) -> tuple[int, bytes]:
    sock = server.connect(timeout=10)
    try:
        sock.sendall(
            f"POST {URL} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n".encode()
        )
        for start in range(0, len(body), 8192):
            part = body[start : start + 8192]
            sock.sendall(b"%x\r\n" % len(part) + part + b"\r\n")
        sock.sendall(b"0\r\n\r\n")
        response = b""
        while chunk := sock.recv(65536):
            response += chunk
    except ConnectionResetError:
        pass  # the server may close before reading the rest; the status came first
    finally:
        sock.close()
    head, _, payload = response.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), payload


def test_a_chunked_body_over_64_kib_is_413(app, gunicorn):
    body = json.dumps(minimal_body(message="x" * 70_000)).encode()
    assert len(body) > 64 * 1024
    status, payload = send_chunked(gunicorn, body)
    assert status == 413
    assert json.loads(payload)["error"]["code"] == "payload_too_large"


def test_a_chunked_body_under_the_limit_is_served(app, gunicorn):
    body = json.dumps(minimal_body(destination="BE")).encode()
    status, payload = send_chunked(gunicorn, body)
    assert status == 201, payload
    assert json.loads(payload)["reference"].startswith("QR-")
