"""The statistics page: requests per day by status (a server-rendered SVG) and medians."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import render_template
from flask_login import login_required

from quote_service.console import bp
from quote_service.console.chart import stacked_bars
from quote_service.models import utcnow
from quote_service.services import statistics

DAYS = 30


@bp.route("/statistics")
@login_required
def statistics_page() -> Any:
    now = utcnow()
    days = statistics.daily_counts(DAYS, now)
    summary = statistics.request_statistics(created_after=now - timedelta(days=DAYS), now=now)
    return render_template(
        "console/statistics.html",
        days=days,
        chart=stacked_bars(days),
        summary=summary,
        span=DAYS,
    )
