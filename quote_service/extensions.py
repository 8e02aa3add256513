"""Extension objects, created unbound and attached to the app in create_app()."""

from __future__ import annotations

import logging
import time

import flask_smorest
from celery import Celery, Task
from flask import Flask, Response
from flask_babel import Babel
from flask_cors import CORS
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect

from quote_service.models.base import Base
from quote_service.schemas.errors import ErrorEnvelopeSchema


class Api(flask_smorest.Api):
    """flask-smorest's Api documenting our error envelope instead of its own.

    The error handlers themselves live in `quote_service.errors`, registered
    after this extension so that they replace flask-smorest's. No catch-all
    `default` response: each operation lists the errors it can answer
    (`quote_service.api.parsing.Blueprint`), so an undocumented status shows.
    """

    ERROR_SCHEMA = ErrorEnvelopeSchema
    DEFAULT_ERROR_RESPONSE_NAME = None


log = logging.getLogger(__name__)

db = SQLAlchemy(model_class=Base)
migrate = Migrate()
api = Api()
babel = Babel()
cors = CORS()
# The client address comes from ProxyFix (TRUSTED_PROXY_COUNT), set in create_app().
limiter = Limiter(key_func=get_remote_address)
# The console's sessions and its CSRF tokens (quote_service.console).
login_manager = LoginManager()
csrf = CSRFProtect()


def retry_after_on_refusals(response: Response) -> Response:
    """Retry-After on a 429: the seconds until the breached limit's window resets.

    Only a refusal asks a client to wait. Flask-Limiter's own headers
    (RATELIMIT_HEADERS_ENABLED) would read the window back from Redis for
    every answer of a limited route, two round trips each; here only a 429
    reads it.
    """
    if response.status_code != 429:
        return response
    breached = limiter.current_limit
    if breached is None:
        return response  # a 429 of our own (sign-in throttling) sets its own header
    try:
        # reset_at is already rounded up to the next whole second.
        seconds = max(1, int(breached.reset_at - time.time()))
    except Exception as error:  # the storage died since the check: no header, still a 429
        log.warning("no Retry-After: rate limit window unreadable (%s)", type(error).__name__)
        return response
    response.headers["Retry-After"] = str(seconds)
    return response


def celery_init_app(app: Flask) -> Celery:
    """A Celery app whose tasks run inside the Flask app context (Flask's own pattern)."""

    class FlaskTask(Task):
        def __call__(self, *args: object, **kwargs: object) -> object:
            with app.app_context():
                return self.run(*args, **kwargs)

    celery_app = Celery(app.name, task_cls=FlaskTask)
    celery_app.config_from_object(app.config["CELERY"])
    celery_app.set_default()
    # Worker bootsteps (the outbox relay) need the Flask app behind the Celery app.
    celery_app.flask_app = app  # type: ignore[attr-defined]
    app.extensions["celery"] = celery_app
    return celery_app
