"""HTTP blueprints, registered on the flask-smorest Api so each is in the OpenAPI."""

from __future__ import annotations

from quote_service.api import catalog, intake, operations
from quote_service.extensions import api


def register_blueprints() -> None:
    for module in (catalog, intake, operations):
        api.register_blueprint(module.blp)
