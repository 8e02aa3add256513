"""GET /api/v1/catalog: what a website form needs to render itself."""

from __future__ import annotations

import marshmallow as ma

from quote_service.api.parsing import Blueprint
from quote_service.schemas.catalog import CatalogQuerySchema, CatalogSchema
from quote_service.services import catalog as catalog_service

blp = Blueprint("catalog", __name__, url_prefix="/api/v1", description="Public catalog")


@blp.route("/catalog")
# Public and cached by websites, which add cache-busting parameters of their own.
@blp.arguments(CatalogQuerySchema, location="query", as_kwargs=True, unknown=ma.EXCLUDE)
@blp.response(200, CatalogSchema)
def get_catalog(lang: str) -> catalog_service.CatalogView:
    """Destinations, conditions, treatments, consent and disclaimers, in one language"""
    return catalog_service.catalog(catalog_service.resolve_language(lang))
