"""Quote service: free-quote intake, routing to clinics and a coordinator queue."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask

from quote_service import (
    cli,
    config,
    console,
    crypto,
    errors,
    http_guards,
    i18n,
    logging_setup,
    metrics,
)
from quote_service.api import register_blueprints
from quote_service.extensions import (
    api,
    celery_init_app,
    cors,
    db,
    limiter,
    migrate,
    retry_after_on_refusals,
)


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app: settings from the environment, overridden by `test_config`."""
    instance_path = config.default_instance_path()
    app = Flask(__name__, instance_path=str(instance_path), instance_relative_config=True)
    app.config.from_mapping(config.from_environment(instance_path=instance_path))
    if test_config:
        app.config.from_mapping(test_config)
    app.config.from_mapping(config.derived_settings(app.config))
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    app.json.sort_keys = False  # type: ignore[attr-defined]

    # First, so the request id is bound and the request counted before any other hook runs.
    logging_setup.init_app(app)
    metrics.init_app(app)
    # Before the rate limiter: it keys on the client address these check.
    http_guards.init_app(app)
    register_extensions(app)
    register_blueprints(app)
    console.init_app(app)
    errors.register_error_handlers(app)
    cli.register_commands(app)
    return app


def register_extensions(app: Flask) -> None:
    crypto.init_app(app)
    i18n.init_app(app)
    db.init_app(app)
    # Batch mode lets the same migrations alter tables on SQLite.
    migrations = Path(__file__).parent.parent / "migrations"
    migrate.init_app(app, db, directory=str(migrations), render_as_batch=True, compare_type=True)
    api.init_app(app)
    app.after_request(retry_after_on_refusals)
    limiter.init_app(app)
    cors.init_app(
        app,
        resources={r"/api/*": {"origins": app.config["CORS_ORIGINS"]}},
        # CORS headers only answer a browser's Origin that is allowed; without
        # this, a request with no Origin would be told every allowed origin.
        always_send=False,
        expose_headers=["Location", "Idempotent-Replayed", "Retry-After", "X-Request-ID"],
    )
    celery_init_app(app)
