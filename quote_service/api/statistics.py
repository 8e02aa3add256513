"""GET /api/v1/statistics: how the queue is doing, for coordinators."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from quote_service.api.auth import COORDINATOR, requires
from quote_service.api.parsing import Blueprint
from quote_service.schemas.statistics import StatisticsQuerySchema, StatisticsSchema
from quote_service.services.reports import reports
from quote_service.services.statistics import request_statistics

blp = Blueprint(
    "statistics",
    __name__,
    url_prefix="/api/v1",
    description="Coordinators: statistics of quote requests (bearer token)",
)


@blp.route("/statistics")
@requires()
@blp.doc(security=COORDINATOR)
@blp.arguments(StatisticsQuerySchema, location="query", as_kwargs=True)
@blp.response(200, StatisticsSchema)
@blp.alt_response(401, description="No token, or one that is not valid.")
def get_statistics(
    created_after: datetime | None = None, created_before: datetime | None = None
) -> dict[str, Any]:
    """Counts, median response times, SLA breaches; daily, per clinic, per coordinator, outcomes

    The reports (`daily`, `by_clinic`, `by_coordinator`, `outcomes`) cover
    the UTC days of the range, the last 30 by default; of a longer range, its last 366.
    """
    return request_statistics(created_after, created_before) | reports(
        created_after, created_before
    )
