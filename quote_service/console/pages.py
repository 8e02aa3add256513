"""What every console page shares: CSRF, security headers, error pages, filters."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flask import Response, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from quote_service.console import bp
from quote_service.errors import ServiceError
from quote_service.extensions import csrf
from quote_service.models import utcnow

# Scripts only from the console itself (htmx and console.js); no inline script,
# no eval, no inline style, nothing from another origin, never framed.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "object-src 'none'",
    ]
)
STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}


@bp.before_request
def check_csrf() -> None:
    """Every state-changing console request carries the session's CSRF token, or is refused."""
    if request.method in STATE_CHANGING:
        csrf.protect()


@bp.after_request
def security_headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    # Queue URLs can hold a searched email address: never send them elsewhere.
    response.headers["Referrer-Policy"] = "no-referrer"
    if request.endpoint != "console.static":
        # Pages show health data: no copy in any cache.
        response.headers["Cache-Control"] = "no-store"
    return response


def error_page(status: int, title: str, message: str) -> tuple[str, int]:
    return render_template("console/error.html", title=title, message=message), status


@bp.errorhandler(CSRFError)
def csrf_refused(error: CSRFError) -> tuple[str, int]:
    return error_page(
        400,
        "This form cannot be accepted",
        "It has expired or did not come from this console, so nothing was changed. "
        "Go back, reload the page and try again.",
    )


@bp.errorhandler(ServiceError)
def service_refused(error: ServiceError) -> tuple[str, int]:
    return error_page(error.status, "That did not work", error.message)


@bp.errorhandler(HTTPException)
def http_error(error: HTTPException) -> tuple[str, int]:
    status = error.code or 500
    titles = {
        403: ("Not for your role", "Only an admin may open this page."),
        404: ("Not found", "There is nothing at this address."),
        405: ("Not allowed", "This address does not take that method."),
    }
    title, message = titles.get(status, (error.name, error.description or ""))
    return error_page(status, title, message)


@bp.app_template_filter("when")
def format_when(value: datetime | None) -> str:
    if value is None:
        return "—"
    return value.strftime("%Y-%m-%d %H:%M UTC")


@bp.app_template_filter("age")
def format_age(value: datetime | None, now: datetime | None = None) -> str:
    """How long ago, in the largest whole unit: 4 min, 3 h, 2 d."""
    if value is None:
        return "—"
    return format_duration(((now or utcnow()) - value).total_seconds())


@bp.app_template_filter("duration")
def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{int(seconds)} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min"
    if seconds < 2 * 86400:
        return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60)} min"
    return f"{int(seconds // 86400)} d"


@bp.app_context_processor
def console_globals() -> dict[str, Any]:
    return {"timedelta": timedelta}
