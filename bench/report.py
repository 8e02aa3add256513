"""docs/PERFORMANCE.md: the generated section between markers; the prose around it is kept."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.results import ScenarioResult, Table

BEGIN = "<!-- bench:begin (written by `make bench`; edits here are overwritten) -->"
END = "<!-- bench:end -->"
NEW_FILE_HEAD = "# Performance\n\n"


def _table(table: Table) -> list[str]:
    lines = [
        "| " + " | ".join(table.headers) + " |",
        "|" + "|".join(" --- " for _ in table.headers) + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in table.rows]
    return lines


def _verdict(met: bool | None) -> str:
    return "" if met is None else ("met" if met else "**not met**")


def render(
    results: Sequence[ScenarioResult],
    machine: dict[str, str],
    command: str,
    when: str,
    settings: dict[str, Any],
    duration_seconds: float,
    load_at_end: str,
) -> str:
    lines = [
        BEGIN,
        "",
        "## Figures of the last run",
        "",
        f"Measured {when} with `{command}` in {duration_seconds / 60:.1f} minutes.",
        "Other work was running on this machine at the same time, so absolute figures are",
        "noisy; the ratios against a floor measured in the same run, alternating with the",
        "project, are the figures that count.",
        "",
        "| machine | |",
        "| --- | --- |",
        *[f"| {key} | {value} |" for key, value in machine.items()],
        f"| load average at end | {load_at_end} |",
        "",
        "Settings: " + ", ".join(f"{key} {value}" for key, value in settings.items()) + ".",
        "",
        "### Ratios and targets",
        "",
        "| scenario | ratio | value | target | |",
        "| --- | --- | --- | --- | --- |",
    ]
    for result in results:
        for item in result.ratios:
            value = "n/a" if math.isnan(item.value) else f"{item.value:.2f}"
            lines.append(
                f"| {result.key} | {item.name} | {value} | {item.target or '(none)'} |"
                f" {_verdict(item.met)} |"
            )
        for check in result.checks:
            lines.append(
                f"| {result.key} | {check.name} | {check.value} | {check.target} |"
                f" {_verdict(check.met)} |"
            )
    for result in results:
        lines += ["", f"### {result.title}", "", result.summary, ""]
        for table in result.tables:
            lines += [*_table(table), ""]
        for note in result.notes:
            lines += [f"- {note}"]
        if result.notes:
            lines.append("")
    lines += [END, ""]
    return "\n".join(lines)


def write(path: Path, section: str) -> None:
    """Replace the generated section of `path`, or create the file around it."""
    if path.exists():
        text = path.read_text()
        if BEGIN in text and END in text:
            head, _, rest = text.partition(BEGIN)
            _, _, tail = rest.partition(END)
            path.write_text(head + section.rstrip("\n") + tail)
            return
        path.write_text(text.rstrip("\n") + "\n\n" + section)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(NEW_FILE_HEAD + section)


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
