"""The coordinator console: server-rendered HTML pages at /console/ for people.

Views parse a form, call the same services as the JSON API and render a
template; no business rule lives here. Sessions are Flask-Login's over a
signed cookie, every state-changing request carries a CSRF token
(Flask-WTF), and every page sends a Content-Security-Policy that lets in
scripts from the console's own origin only.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from flask import Blueprint, Flask

from quote_service.extensions import csrf, login_manager

log = logging.getLogger(__name__)

bp = Blueprint(
    "console",
    __name__,
    url_prefix="/console",
    static_folder="../static/console",
    static_url_path="/static",
)

SECRET_FILE = "session-secret.key"


def init_app(app: Flask) -> None:
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = development_secret(app)
    login_manager.init_app(app)
    csrf.init_app(app)
    # Imported here: each module adds its routes and hooks to `bp`.
    from quote_service.console import (  # noqa: F401
        auth,
        clinics,
        detail,
        pages,
        queue,
        statistics,
    )

    app.register_blueprint(bp)


def development_secret(app: Flask) -> str:
    """Without SECRET_KEY (make run), a random secret kept in the instance folder.

    Deployments set SECRET_KEY; every process must share it to read the others' sessions.
    """
    path = Path(app.instance_path) / SECRET_FILE
    if not path.exists():
        try:
            # O_EXCL: two processes starting at once agree on one secret.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(32))
        except FileExistsError:
            pass
    log.warning("SECRET_KEY is not set: using the development secret in %s", path)
    return path.read_text().strip()
