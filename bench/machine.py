"""What the figures were measured on: CPU, memory, load, versions."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from pathlib import Path

import redis

from bench.settings import cpu_count


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def load_average() -> str:
    try:
        return " ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "unknown"


def _wrk_version() -> str:
    binary = shutil.which("wrk")
    if binary is None:
        return "not installed"
    result = subprocess.run([binary, "-v"], capture_output=True, text=True, timeout=10)
    first = (result.stdout or result.stderr).strip().splitlines()
    return first[0] if first else "unknown"


def describe(redis_url: str) -> dict[str, str]:
    client = redis.Redis.from_url(redis_url)
    try:
        redis_version = str(client.info("server").get("redis_version", "unknown"))
    finally:
        client.close()
    return {
        "CPU": _cpu_model(),
        "CPUs (nproc)": str(cpu_count()),
        "memory": _memory(),
        "OS": f"{platform.system()} {platform.release()}",
        "Python": platform.python_version(),
        "PostgreSQL": "unknown",
        "Redis": redis_version,
        "wrk": _wrk_version(),
        "load average at start (1, 5, 15 min)": load_average(),
    }
