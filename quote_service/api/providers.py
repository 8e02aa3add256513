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
from quote_service.errors import FieldErrors
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


CatalogCheck = Callable[..., FieldErrors]


def with_catalog_errors(check: CatalogCheck) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Around `blp.arguments`: a body refused for its shape (422) is still checked
    against the catalog, so that one answer names every error (README).

    `check(valid, refused, **view_kwargs)` gets the fields that passed the schema
    and the names of those that did not, and returns the catalog's errors of the
    others; they are added to the 422.
    """

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return view(*args, **kwargs)
            except HTTPException as error:
                add_catalog_errors(error, check, kwargs)
                raise

        return wrapper

    return decorator


def add_catalog_errors(error: HTTPException, check: CatalogCheck, kwargs: dict[str, Any]) -> None:
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
    for field, texts in check(refused.valid_data, set(per_field), **kwargs).items():
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
    @with_catalog_errors(providers.creation_catalog_errors)
    @blp.arguments(ProviderCreateSchema)
    @blp.response(201, ProviderOutSchema)
    @blp.alt_response(409, response="CONFLICT", description="The slug is taken (`slug_taken`).")
    def post(self, data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        """Add a provider (admin)"""
        provider = providers.create_provider(data, current_user().id)
        location = url_for("providers.ProviderById", provider_id=provider["id"])
        return provider, {"Location": location}


@blp.route("/providers/<int:provider_id>")
class ProviderById(MethodView):
    @requires()
    @blp.doc(security=COORDINATOR)
    @blp.response(200, ProviderOutSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, provider_id: int) -> dict[str, Any]:
        """One provider"""
        return providers.get_provider(provider_id)

    @requires("admin")
    @blp.doc(security=ADMIN)
    @with_catalog_errors(providers.update_catalog_errors)
    @blp.arguments(ProviderUpdateSchema)
    @blp.response(200, ProviderOutSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def patch(self, data: dict[str, Any], provider_id: int) -> dict[str, Any]:
        """Change some of a provider's fields; the slug stays (admin)"""
        return providers.update_provider(provider_id, data, current_user().id)

    @requires("admin")
    @blp.doc(security=ADMIN)
    @blp.response(200, ProviderOutSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def delete(self, provider_id: int) -> dict[str, Any]:
        """Deactivate a provider (admin); it is never deleted

        Routing decisions point at providers, so the row stays: the provider
        is marked inactive and is never routed to again. PATCH `active` back
        to true to restore it.
        """
        return providers.deactivate_provider(provider_id, current_user().id)
