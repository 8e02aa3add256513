"""What a scenario hands the report: tables of figures and the ratios that judge them."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Ratio:
    """A project figure over its floor's (or over itself at another size)."""

    name: str
    value: float
    #: The target as text, e.g. ">= 0.8"; empty when the ratio is informational.
    target: str = ""
    #: Whether the target is met; None when there is no target.
    met: bool | None = None

    def describe(self) -> str:
        value = "n/a" if math.isnan(self.value) else f"{self.value:.2f}"
        if self.met is None:
            return value
        return f"{value} (target {self.target}: {'met' if self.met else 'NOT met'})"


@dataclass
class Check:
    """An absolute target (a latency bound) and whether this run met it."""

    name: str
    value: str
    target: str
    met: bool


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)


@dataclass
class ScenarioResult:
    key: str
    title: str
    summary: str
    tables: list[Table] = field(default_factory=list)
    ratios: list[Ratio] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: Raw figures of every trial, for the JSON file.
    raw: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        for item in data["ratios"]:
            if math.isnan(item["value"]):
                item["value"] = None
        return data


def at_least(name: str, value: float, bound: float) -> Ratio:
    return Ratio(name, value, f">= {bound:g}", (not math.isnan(value)) and value >= bound)


def at_most(name: str, value: float, bound: float) -> Ratio:
    return Ratio(name, value, f"<= {bound:g}", (not math.isnan(value)) and value <= bound)


def ms(seconds: float) -> str:
    """Seconds as milliseconds for a table."""
    if math.isnan(seconds):
        return "n/a"
    value = seconds * 1000
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"
