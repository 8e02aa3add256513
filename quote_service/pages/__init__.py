"""HTML pages reached by a link in an email: a clinic's invitation (and the patient's page).

Server-rendered, usable without JavaScript; they call the same services as
the JSON API. The link's token is the only credential (see `security`).
"""

from __future__ import annotations

from flask import Flask

from quote_service.pages import clinic


def init_app(app: Flask) -> None:
    app.register_blueprint(clinic.bp)
