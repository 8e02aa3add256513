"""Admins: export and erasure of a person's data, and the audit of reads."""

from __future__ import annotations

from typing import Any

from quote_service.api.auth import ADMIN, actor, current_user, requires
from quote_service.api.parsing import Blueprint
from quote_service.schemas.patient import PrivacyRequestPageSchema, PrivacyRequestsQuerySchema
from quote_service.schemas.privacy import (
    AccessLogPageSchema,
    AccessLogQuerySchema,
    ErasureSchema,
    ExportSchema,
    SubjectSchema,
)
from quote_service.services import privacy, privacy_requests

blp = Blueprint(
    "privacy", __name__, url_prefix="/api/v1", description="Admins: data-subject rights, audit"
)


@blp.route("/privacy/export", methods=["POST"])
@blp.doc(security=ADMIN)
@requires("admin")
@blp.arguments(SubjectSchema)
@blp.response(200, ExportSchema)
def export(body: dict[str, Any]) -> dict[str, Any]:
    """Everything stored about a person, by email (POST keeps the address out of URLs)"""
    return privacy.export_person(body["email"], actor(), current_user().id)


@blp.route("/privacy/erasure", methods=["POST"])
@blp.doc(security=ADMIN)
@requires("admin")
@blp.arguments(SubjectSchema)
@blp.response(200, ErasureSchema)
def erase(body: dict[str, Any]) -> dict[str, int]:
    """Anonymise every request of a person; statistics keep a skeleton"""
    return {"erased": privacy.erase_person(body["email"], actor(), current_user().id)}


@blp.route("/access-log")
@blp.doc(security=ADMIN)
@requires("admin")
@blp.arguments(AccessLogQuerySchema, location="query")
@blp.response(200, AccessLogPageSchema)
def access_log(query: dict[str, Any]) -> dict[str, Any]:
    """Who read which request, or exported or erased whose data, newest first"""
    return {"items": privacy.access_log(query["limit"], query.get("before_id"))}


@blp.route("/privacy/requests")
@blp.doc(security=ADMIN)
@requires("admin")
@blp.arguments(PrivacyRequestsQuerySchema, location="query")
@blp.response(200, PrivacyRequestPageSchema)
def privacy_request_list(query: dict[str, Any]) -> dict[str, Any]:
    """Patients' requests for a copy or an erasure, soonest due first, with their status

    Fulfil one with the export or the erasure of the patient's email address:
    that marks the person's open requests of that kind fulfilled.
    """
    return {"items": privacy_requests.listing(query.get("status"), query["limit"])}
