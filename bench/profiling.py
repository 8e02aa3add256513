"""Where the time goes: py-spy attached to the running API and worker during a scenario.

`python -m bench --profile DIR` records every project process of each scenario
(`DIR/<scenario>-<process>.raw`, collapsed stacks) and writes a summary next to
it. py-spy is not a dependency of the project: `pip install py-spy` into the
venv for a profiling run. Figures of a profiled run are perturbed; profile in
a run of its own.

`python -m bench.profiling FILE.raw...` prints the summary of recorded stacks.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from tests.support.processes import ManagedProcess

SAMPLES_PER_SECOND = 100
STOP_TIMEOUT = 60.0
_FRAME = re.compile(r"^(?P<function>.*) \((?P<path>[^()]*?)(?::\d+)?\)$")
# Our code is listed by function; everything else is summed by package.
OWN_PACKAGES = ("quote_service/", "worker/", "bench/")


def py_spy() -> str:
    binary = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(binary).exists():
        raise RuntimeError("--profile needs py-spy: `.venv/bin/pip install py-spy`")
    return binary


class Recording:
    """py-spy recording one process and its children until stopped."""

    def __init__(self, target: ManagedProcess, output: Path) -> None:
        self.output = output
        self._process = subprocess.Popen(
            [
                py_spy(),
                "record",
                f"--pid={target.pid}",
                "--subprocesses",
                "--nonblocking",
                "--format=raw",
                f"--rate={SAMPLES_PER_SECOND}",
                f"--output={output}",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop(self) -> None:
        """Stop sampling (py-spy writes its file on SIGINT) and summarise what was recorded."""
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGINT)
        try:
            self._process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        if self.output.exists():
            self.output.with_suffix(".summary.txt").write_text(summarize(self.output))


def _name(frame: str) -> tuple[str, str]:
    """(function, path relative to site-packages or the project) of a py-spy frame."""
    match = _FRAME.match(frame)
    if match is None:
        return frame, ""
    # py-spy names files relative to their sys.path entry (`celery/worker/worker.py`,
    # `quote_service/crypto.py`); an absolute path is made so too.
    path = match["path"]
    if "site-packages/" in path:
        path = path.split("site-packages/")[-1]
    elif path.startswith("/"):
        path = re.sub(r"^.*?/(?=(quote_service|worker|bench)/)", "", path)
    return match["function"], path


def summarize(path: Path, top: int = 40) -> str:
    """Inclusive share of our functions, and where the leaf samples land, by package."""
    inclusive: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        total += samples
        frames = [_name(frame) for frame in stack.split(";")]
        for label in {
            f"{function} ({file})" for function, file in frames if file.startswith(OWN_PACKAGES)
        }:
            inclusive[label] += samples
        function, file = frames[-1]
        packages[file.split("/")[0] or function] += samples
    if not total:
        return f"{path.name}: no samples\n"
    lines = [f"{path.name}: {total} samples (busy threads only)", "", "our code, inclusive:"]
    lines += [f"  {100 * n / total:5.1f}%  {label}" for label, n in inclusive.most_common(top)]
    lines += ["", "leaf samples by package or module:"]
    lines += [f"  {100 * n / total:5.1f}%  {label}" for label, n in packages.most_common(15)]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    for name in argv if argv is not None else sys.argv[1:]:
        sys.stdout.write(summarize(Path(name)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
