"""HTTP blueprints, registered on the flask-smorest Api so each is in the OpenAPI."""

from __future__ import annotations

from flask import Flask

from quote_service.api import (
    catalog,
    clinic,
    intake,
    operations,
    patient,
    privacy,
    providers,
    queue,
    quotes,
    safety,
    statistics,
    users,
)
from quote_service.api.auth import SECURITY_SCHEMES
from quote_service.extensions import api
from quote_service.web import clinic as clinic_pages
from quote_service.web import patient as patient_pages
from quote_service.web import views as web_views

BLUEPRINT_MODULES = (
    catalog,
    intake,
    queue,
    quotes,
    clinic,
    patient,
    safety,
    providers,
    statistics,
    users,
    privacy,
    operations,
)


def register_blueprints(app: Flask) -> None:
    for name, scheme in SECURITY_SCHEMES.items():
        api.spec.components.security_scheme(name, scheme)
    for module in BLUEPRINT_MODULES:
        api.register_blueprint(module.blp)
    # Pages for people (HTML), outside the OpenAPI.
    app.register_blueprint(web_views.blp)
    app.register_blueprint(clinic_pages.bp)
    app.register_blueprint(patient_pages.bp)
