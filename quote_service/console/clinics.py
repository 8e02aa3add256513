"""Admin pages: clinics (capacity, weight, languages, active) and the access log."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for

from quote_service.console import bp
from quote_service.console.auth import admin_required, me
from quote_service.console.forms import load_body
from quote_service.errors import ServiceError
from quote_service.schemas.providers import ProviderUpdateSchema
from quote_service.services import catalog, privacy, providers

EDITABLE = ("daily_capacity", "weight", "languages", "active")


@bp.route("/clinics")
@admin_required
def clinics_page() -> Any:
    return render_template("console/clinics.html", clinics=providers.list_providers())


def render_clinic(
    clinic: providers.ProviderFigures, errors: dict, values: dict, status: int
) -> Any:
    page = render_template(
        "console/clinic.html",
        clinic=clinic,
        languages=catalog.languages(),
        errors=errors,
        values=values,
    )
    return page, status


@bp.route("/clinics/<int:provider_id>", methods=["GET", "POST"])
@admin_required
def clinic_page(provider_id: int) -> Any:
    clinic = providers.get_provider(provider_id)
    saved = {name: getattr(clinic.provider, name) for name in EDITABLE}
    if request.method == "GET":
        return render_clinic(clinic, {}, saved, 200)
    # The API's own schema reads the change; the form's strings are what a form sends.
    body = {
        "daily_capacity": request.form.get("daily_capacity", "").strip(),
        "weight": request.form.get("weight", "").strip(),
        "languages": request.form.getlist("languages"),
        "active": request.form.get("active") == "on",
    }
    values = {**saved, **body}
    data, errors = load_body(ProviderUpdateSchema(only=EDITABLE), body)
    if data is None:
        return render_clinic(clinic, errors, values, 422)
    try:
        providers.update_provider(provider_id, data, me().id)
    except ServiceError as refusal:
        return render_clinic(
            clinic, refusal.fields or {"form": [refusal.message]}, values, refusal.status
        )
    flash(f"{clinic.provider.name} saved.", "success")
    return redirect(url_for("console.clinics_page"), 303)


ACCESS_LOG_PAGE = 50


@bp.route("/access-log")
@admin_required
def access_log_page() -> Any:
    """Who read or exported what, newest first (the API's access log, a page at a time)."""
    before = request.args.get("before", "")
    before_id = int(before) if before.isascii() and before.isdigit() and len(before) < 10 else None
    if before and before_id is None:
        return render_template("console/error.html", title="Bad page", message="Bad `before`."), 422
    rows = privacy.access_log(ACCESS_LOG_PAGE, before_id)
    older = rows[-1].id if len(rows) == ACCESS_LOG_PAGE else None
    return render_template("console/access_log.html", rows=rows, older=older)
