"""Providers: coordinators read them, admins create, change and deactivate them."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

import marshmallow as ma
from flask import url_for
from flask.views import MethodView
from werkzeug.exceptions import HTTPException

from quote_service.api.auth import ADMIN, COORDINATOR, current_user, requires
from quote_service.api.parsing import Blueprint
from quote_service.schemas.providers import (
    ProviderCreateSchema,
    ProviderListSchema,
    ProviderOutSchema,
    ProviderQuerySchema,
    ProviderUpdateSchema,
)
from quote_service.services import providers

blp = Blueprint(
    "providers",
    __name__,
    url_prefix="/api/v1",
    description="Providers: the clinics requests are routed to (bearer token)",
)


def with_catalog_errors(view: Callable[..., Any]) -> Callable[..., Any]:
    """Around `blp.arguments`: a body refused for its shape (422) is still checked
    against the catalog, so that one answer names every error (README).

    The providers service judges the fields that passed the schema, as it does
    for a CSV row or a catalog file entry; its errors are added to the 422.
    """

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return view(*args, **kwargs)
        except HTTPException as error:
            add_catalog_errors(error, kwargs.get("provider_id"))
            raise

    return wrapper


def add_catalog_errors(error: HTTPException, provider_id: int | None) -> None:
    """Add the catalog's errors to webargs' `{location: {field: [msg]}}` of a 422."""
    refused = getattr(error, "exc", None)
    messages = (getattr(error, "data", None) or {}).get("messages")
    if (
        error.code != 422
        or not isinstance(refused, ma.ValidationError)
        or not isinstance(refused.valid_data, dict)
        or not isinstance(messages, dict)
        or len(messages) != 1
    ):
        return
    per_field = next(iter(messages.values()))
    if not isinstance(per_field, dict):
        return
    errors = providers.refused_body_errors(refused.valid_data, per_field, provider_id)
    for field, texts in errors.items():
        per_field.setdefault(field, texts)


@blp.route("/providers")
class Providers(MethodView):
    @requires()
    @blp.doc(security=COORDINATOR)
    @blp.arguments(ProviderQuerySchema, location="query")
    @blp.response(200, ProviderListSchema)
    def get(self, filters: dict[str, Any]) -> dict[str, Any]:
        """List providers, with how many requests each was routed today"""
        return {"items": providers.list_providers(**filters)}

    @requires("admin")
    @blp.doc(security=ADMIN)
    @with_catalog_errors
    @blp.arguments(ProviderCreateSchema)
    @blp.response(201, ProviderOutSchema)
    @blp.alt_response(409, response="CONFLICT", description="The slug is taken (`slug_taken`).")
    def post(self, data: dict[str, Any]) -> tuple[providers.ProviderFigures, dict[str, str]]:
        """Add a provider (admin)"""
        created = providers.create_provider(data, current_user().id)
        location = url_for("providers.ProviderById", provider_id=created.provider.id)
        return created, {"Location": location}


@blp.route("/providers/<int:provider_id>")
class ProviderById(MethodView):
    @requires()
    @blp.doc(security=COORDINATOR)
    @blp.response(200, ProviderOutSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, provider_id: int) -> providers.ProviderFigures:
        """One provider"""
        return providers.get_provider(provider_id)

    @requires("admin")
    @blp.doc(security=ADMIN)
    @with_catalog_errors
    @blp.arguments(ProviderUpdateSchema)
    @blp.response(200, ProviderOutSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def patch(self, data: dict[str, Any], provider_id: int) -> providers.ProviderFigures:
        """Change some of a provider's fields; the slug stays (admin)"""
        return providers.update_provider(provider_id, data, current_user().id)

    @requires("admin")
    @blp.doc(security=ADMIN)
    @blp.response(200, ProviderOutSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def delete(self, provider_id: int) -> providers.ProviderFigures:
        """Deactivate a provider (admin); it is never deleted

        Routing decisions point at providers, so the row stays: the provider
        is marked inactive and is never routed to again. PATCH `active` back
        to true to restore it.
        """
        return providers.deactivate_provider(provider_id, current_user().id)
