"""Geometry of the statistics page's stacked bar chart, drawn as SVG by a template.

No chart library and no script: the server computes each bar's rectangles,
so the picture is in the HTML and passes the Content-Security-Policy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from quote_service.models import RequestStatus as S

# Okabe and Ito's palette, told apart with every common colour blindness.
COLOURS = {
    S.RECEIVED: "#999999",
    S.ROUTED: "#56B4E9",
    S.UNROUTABLE: "#E69F00",
    S.IN_REVIEW: "#0072B2",
    S.QUOTED: "#009E73",
    S.CLOSED: "#000000",
    S.REJECTED: "#D55E00",
    S.WITHDRAWN: "#CC79A7",
    S.SPAM: "#F0E442",
}
WIDTH = 900
HEIGHT = 320
LEFT = 48
BOTTOM = 40
TOP = 16


@dataclass
class Bar:
    x: float
    width: float
    label: str
    total: int
    title: str
    segments: list[dict[str, Any]] = field(default_factory=list)


def nice_ceiling(value: int) -> int:
    """The top of the y axis: 1, 2 or 5 times a power of ten, at least `value`."""
    if value <= 0:
        return 1
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power


def stacked_bars(days: list[dict[str, Any]]) -> dict[str, Any]:
    """Bars (one per day, a segment per status) and y-axis ticks for `days`."""
    top = nice_ceiling(max((sum(d["by_status"].values()) for d in days), default=0))
    plot_height = HEIGHT - BOTTOM - TOP
    slot = (WIDTH - LEFT) / max(len(days), 1)
    bars = []
    for index, day in enumerate(days):
        counts = day["by_status"]
        total = sum(counts.values())
        parts = ", ".join(f"{n} {status}" for status, n in counts.items() if n)
        bar = Bar(
            x=LEFT + index * slot + slot * 0.15,
            width=slot * 0.7,
            label=day["day"].strftime("%d"),
            total=total,
            title=f"{day['day'].isoformat()}: {total} requests" + (f" ({parts})" if parts else ""),
        )
        y = HEIGHT - BOTTOM
        for status, count in counts.items():
            if not count:
                continue
            height = plot_height * count / top
            y -= height
            bar.segments.append(
                {"status": status, "y": y, "height": height, "colour": COLOURS[status]}
            )
        bars.append(bar)
    ticks = [
        {"value": value, "y": HEIGHT - BOTTOM - plot_height * value / top}
        for value in (0, top // 2, top)
    ]
    return {
        "bars": bars,
        "ticks": ticks,
        "width": WIDTH,
        "height": HEIGHT,
        "left": LEFT,
        "baseline": HEIGHT - BOTTOM,
        "colours": COLOURS,
    }
