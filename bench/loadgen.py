"""Load on loopback: wrk for throughput, a steady-rate sender, and one-at-a-time timed GETs."""

from __future__ import annotations

import http.client
import json
import shutil
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

JSON_MARKER = "BENCH_JSON "
WRK_TIMEOUT_SECONDS = 10
HTTP_TIMEOUT_SECONDS = 30.0
SENDER_THREADS = 64
#: The email of each posted request is `<prefix><unique key>@example.org`.
EMAIL_DOMAIN = "example.org"


def intake_body(email: str) -> dict[str, Any]:
    """A complete quote request as a website form sends it; only the address varies."""
    start = date.today() + timedelta(days=60)
    return {
        "full_name": "Jan Peeters",
        "email": email,
        "phone": "+32 470 12 34 56",
        "country_of_residence": "BE",
        "preferred_language": "nl",
        "condition": "stroke",
        "destination": "BE",
        "treatment": "msc",
        "patient_age": 64,
        "travel_from": start.isoformat(),
        "travel_to": (start + timedelta(days=14)).isoformat(),
        "budget_eur": 25000,
        "message": "Stroke in March, left side weakness.\nAsking about MSC trials.",
        "consent_privacy": True,
        "consent_marketing": False,
    }


# Each wrk thread numbers its requests; the tag (a script argument) makes the
# keys and addresses of one trial differ from every other trial's.
WRK_SCRIPT = """
local threads = {}
local counter = 0
local tag = "t"
local template = [==[BODY]==]

function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_number", #threads)
end

function init(args)
  tag = (args[1] or "t") .. "-" .. tostring(thread_number)
end

function request()
  counter = counter + 1
  local key = tag .. "-" .. counter
  local body = string.gsub(template, "@KEY@", key)
  return wrk.format("POST", "PATH", {
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = key,
  }, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'MARKER{"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d,'
    .. ' "status": %d, "timeout": %d, "p50_us": %d, "p99_us": %d, "mean_us": %.1f}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.mean))
end
"""


def write_wrk_script(directory: Path, path: str, email_prefix: str) -> Path:
    body = json.dumps(intake_body(f"{email_prefix}@KEY@@{EMAIL_DOMAIN}"))
    script = WRK_SCRIPT.replace("BODY", body).replace("PATH", path).replace("MARKER", JSON_MARKER)
    target = directory / "intake.lua"
    target.write_text(script)
    return target


@dataclass
class WrkResult:
    requests: int
    seconds: float
    errors: int
    p50: float
    p99: float

    @property
    def throughput(self) -> float:
        """Successful requests per second."""
        return (self.requests - self.errors) / self.seconds if self.seconds else 0.0


def wrk_binary() -> str:
    binary = shutil.which("wrk")
    if binary is None:
        raise RuntimeError("wrk is not installed: `make bench` installs it (apt-get install wrk)")
    return binary


def run_wrk(
    url: str, script: Path, seconds: float, connections: int, tag: str, threads: int = 1
) -> WrkResult:
    """wrk against `url` for `seconds`; latency in seconds, non-2xx answers counted as errors."""
    command = [
        wrk_binary(),
        f"--threads={threads}",
        f"--connections={connections}",
        f"--duration={max(seconds, 1):g}s",
        f"--timeout={WRK_TIMEOUT_SECONDS}s",
        f"--script={script}",
        url,
        "--",
        tag,
    ]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=seconds + WRK_TIMEOUT_SECONDS + 30
    )
    line = next((ln for ln in result.stdout.splitlines() if ln.startswith(JSON_MARKER)), None)
    if result.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    data = json.loads(line[len(JSON_MARKER) :])
    errors = sum(data[k] for k in ("connect", "read", "write", "status", "timeout"))
    return WrkResult(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        errors=errors,
        p50=data["p50_us"] / 1e6,
        p99=data["p99_us"] / 1e6,
    )


@dataclass
class Sent:
    email: str
    #: time.monotonic() the request was due to leave: latencies count from here, so a
    #: sender held up by slow answers does not hide the wait (coordinated omission)
    scheduled: float
    status: int
    #: from the moment the request left to its answer
    seconds: float


def post_json(host: str, port: int, path: str, body: bytes, headers: dict[str, str]) -> int:
    connection = http.client.HTTPConnection(host, port, timeout=HTTP_TIMEOUT_SECONDS)
    try:
        connection.request("POST", path, body, {"Content-Type": "application/json", **headers})
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def post_steadily(
    host: str, port: int, path: str, emails: list[str], rate: float, tag: str
) -> list[Sent]:
    """POST one request per address at a fixed rate (open loop: a slow answer delays nothing)."""
    results: list[Sent] = []
    lock = threading.Lock()

    def send(number: int, email: str, scheduled: float) -> None:
        body = json.dumps(intake_body(email)).encode()
        started = time.monotonic()
        try:
            status = post_json(host, port, path, body, {"Idempotency-Key": f"{tag}-{number}"})
        except OSError:
            status = 0
        sent = Sent(email, scheduled, status, time.monotonic() - started)
        with lock:
            results.append(sent)

    begin = time.monotonic()
    with ThreadPoolExecutor(max_workers=SENDER_THREADS) as pool:
        for number, email in enumerate(emails):
            scheduled = begin + number / rate
            # Pacing the sender (not a test wait): each request leaves on its schedule.
            delay = scheduled - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            pool.submit(send, number, email, scheduled)
    return results


def timed_get(host: str, port: int, path: str, headers: dict[str, str]) -> tuple[int, float, Any]:
    """(status, seconds, parsed JSON body) of one GET on a fresh connection."""
    started = time.perf_counter()
    connection = http.client.HTTPConnection(host, port, timeout=HTTP_TIMEOUT_SECONDS)
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        payload = response.read()
        status = response.status
    finally:
        connection.close()
    elapsed = time.perf_counter() - started
    try:
        body = json.loads(payload)
    except ValueError:
        body = None
    return status, elapsed, body
