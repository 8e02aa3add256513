"""Signing in and out of the console, sessions and roles."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import (
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import UserMixin, current_user, login_required, login_user, logout_user

from quote_service.console import bp
from quote_service.console.forms import SignInForm
from quote_service.errors import TooManyRequests
from quote_service.extensions import login_manager
from quote_service.models import User, utcnow
from quote_service.services import passwords

View = TypeVar("View", bound=Callable[..., Any])
LAST_ACTIVE = "last_active"
# Requests the page makes by itself (heartbeats, live counts): they are not
# activity, or an open tab would keep its session alive for ever.
BACKGROUND_ENDPOINTS = {"console.heartbeat", "console.queue_live"}


class SignedIn(UserMixin):
    """The console's view of a signed-in user (Flask-Login wants these methods).

    Plain values copied from the row, so nothing depends on the database
    session the user was loaded in.
    """

    def __init__(self, user: User) -> None:
        self.id: int = user.id
        self.email: str = user.email
        self.role: str = user.role
        self._session_id = passwords.session_id(user)

    def get_id(self) -> str:
        return self._session_id

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def actor(self) -> str:
        """How the timeline names this user (as the API does)."""
        return f"user:{self.email}"


@login_manager.user_loader
def load_user(session_id: str) -> SignedIn | None:
    user = passwords.user_of_session(session_id)
    return SignedIn(user) if user is not None else None


login_manager.login_view = "console.login"
login_manager.login_message = "Sign in to continue."
login_manager.login_message_category = "info"


@login_manager.unauthorized_handler
def unauthorized() -> Response:
    if request.headers.get("HX-Request"):
        # htmx follows HX-Redirect with a full page load instead of swapping a login form in.
        response = Response(status=401)
        response.headers["HX-Redirect"] = url_for("console.login")
        return response
    flash(login_manager.login_message, "info")
    return redirect(url_for("console.login", next=request.full_path.rstrip("?")), 303)


def me() -> SignedIn:
    return current_user  # type: ignore[return-value]


def admin_required(view: View) -> View:
    @wraps(view)
    @login_required
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not me().is_admin:
            abort(403)
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


@bp.before_request
def end_idle_session() -> None:
    """Sign out a session unused for CONSOLE_IDLE_MINUTES; note activity otherwise."""
    if not current_user.is_authenticated:
        return
    now = utcnow()
    idle_limit = current_app.permanent_session_lifetime
    last = session.get(LAST_ACTIVE)
    if last is not None and now - datetime.fromisoformat(last) > idle_limit:
        logout_user()
        session.clear()
        flash("You were signed out after a while without activity.", "info")
        return
    if request.endpoint not in BACKGROUND_ENDPOINTS:
        session[LAST_ACTIVE] = now.isoformat()


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a console path only, never another site."""
    default = url_for("console.queue_page")
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/console/"):
        return default
    if "\\" in target or target.startswith("//"):
        return default
    return target


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    if current_user.is_authenticated and request.method == "GET":
        return redirect(safe_next(request.args.get("next")), 303)
    form = SignInForm()
    status = 200
    error = None
    if request.method == "POST":
        if not form.validate():
            status = 422
        else:
            try:
                user = passwords.sign_in(form.email.data or "", form.password.data or "")
            except passwords.WrongCredentials as refusal:
                error, status = refusal.message, 401
            except TooManyRequests as refusal:
                page = render_template(
                    "console/login.html", form=form, error=refusal.message, next=_next()
                )
                return page, 429, {"Retry-After": str(refusal.retry_after)}
            else:
                session.clear()
                login_user(SignedIn(user))
                session.permanent = True
                session[LAST_ACTIVE] = utcnow().isoformat()
                return redirect(safe_next(_next()), 303)
    return render_template("console/login.html", form=form, error=error, next=_next()), status


def _next() -> str | None:
    return request.form.get("next") or request.args.get("next")


@bp.route("/logout", methods=["POST"])
def logout() -> Response:
    logout_user()
    session.clear()
    flash("You are signed out.", "info")
    return redirect(url_for("console.login"), 303)
