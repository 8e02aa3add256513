"""POST /quote-requests/<reference>/safety-review: a coordinator's verdict on an urgent flag."""

from __future__ import annotations

from typing import Any

from quote_service.api.auth import COORDINATOR, actor, requires
from quote_service.api.parsing import Blueprint
from quote_service.api.queue import ETAG_HEADER, expected_version, versioned
from quote_service.schemas.safety import SafetyReviewInSchema, SafetyReviewOutSchema
from quote_service.services import safety

blp = Blueprint(
    "safety",
    __name__,
    url_prefix="/api/v1",
    description="Coordinators: urgent symptoms, reviewed (bearer token)",
)


@blp.route("/quote-requests/<string:reference>/safety-review", methods=["POST"])
@blp.doc(security=COORDINATOR)
@requires("coordinator")
@blp.arguments(SafetyReviewInSchema)
@blp.response(200, SafetyReviewOutSchema, headers=ETAG_HEADER)
@versioned("`not_flagged` (the request was not flagged urgent)")
def review_safety(body: dict[str, Any], reference: str) -> tuple[dict[str, Any], dict[str, str]]:
    """Record whether an urgent flag was an emergency (`confirmed`) or a `false_alarm`"""
    version = expected_version(body)
    request = safety.review(reference, body["verdict"], body.get("note"), actor(), version)
    body_out = {"reference": request.reference, "version": request.version}
    return {**body_out, "safety": safety.view(request)}, {"ETag": f'"{request.version}"'}
