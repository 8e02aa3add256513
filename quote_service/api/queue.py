"""The coordinators' queue: list, detail, workflow and actions on quote requests."""

from __future__ import annotations

from quote_service.api.parsing import Blueprint

blp = Blueprint(
    "queue",
    __name__,
    url_prefix="/api/v1",
    description="Coordinators: the queue of quote requests (bearer token)",
)
