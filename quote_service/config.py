"""Every setting of the service, read from the environment in one place.

Values are parsed strictly: a malformed boolean, integer or URL stops the
process at start instead of surprising us later.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography.fernet import Fernet
from kombu import Queue
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("json", "text")
# Who patients are told they deal with, until a deployment says: samples, marked so.
SAMPLE_ORGANISATION_NAME = "Example Facilitator (sample)"
SAMPLE_ORGANISATION_ADDRESS = "1 Sample Street, 1000 Brussels, Belgium (sample)"
SAMPLE_CONTACT_EMAIL = "contact@facilitator.example"
SAMPLE_PRIVACY_POLICY_URL = "https://facilitator.example/sample-privacy-policy"


class ConfigError(ValueError):
    """A setting in the environment cannot be used."""


def parse_bool(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigError(f"{name} must be a boolean (true/false), got {value!r}")


def parse_int(name: str, value: str, minimum: int = 0) -> int:
    try:
        number = int(value.strip())
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {value!r}") from None
    if number < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {number}")
    return number


def parse_float(name: str, value: str, minimum: float = 0.0) -> float:
    try:
        number = float(value.strip())
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {value!r}") from None
    if number < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {number}")
    return number


def parse_choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    """One of `choices`, any case; returned as written in `choices`."""
    by_lower = {choice.lower(): choice for choice in choices}
    chosen = by_lower.get(value.strip().lower())
    if chosen is None:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return chosen


def parse_port_or_none(name: str, value: str) -> int | None:
    """A TCP port, or None (off) when empty."""
    if not value.strip():
        return None
    port = parse_int(name, value, minimum=1)
    if port > 65535:
        raise ConfigError(f"{name} must be a TCP port (1-65535), got {port}")
    return port


def parse_existing_dir(name: str, value: str) -> str:
    """A directory that exists, or "" when unset."""
    if value and not Path(value).is_dir():
        raise ConfigError(f"{name} must be an existing directory, got {value!r}")
    return value


def parse_http_url(name: str, value: str) -> str:
    """An absolute http(s) URL, as a patient's browser opens it."""
    url = value.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{name} must be an http:// or https:// URL, got {value!r}")
    return url


def parse_list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def parse_fernet_keys(value: str) -> list[str]:
    """Comma-separated Fernet keys, newest first; a malformed one stops the start."""
    keys = parse_list(value)
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key.encode())
        except ValueError:
            raise ConfigError(
                f"DATA_ENCRYPTION_KEYS: key {position} is not a Fernet key "
                "(32 url-safe base64-encoded bytes; `flask keys generate` makes one)"
            ) from None
    return keys


def normalise_database_url(url: str) -> str:
    """Accept `postgresql://` and `postgres://` and use the psycopg 3 driver for them."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            url = "postgresql+psycopg://" + url[len(prefix) :]
    try:
        make_url(url)
    except ArgumentError:
        raise ConfigError(f"DATABASE_URL is not a database URL: {url!r}") from None
    return url


def default_instance_path() -> Path:
    """`instance/` at the project root, next to `quote_service/`."""
    return Path(__file__).resolve().parent.parent / "instance"


def from_environment(
    environ: Mapping[str, str] | None = None, instance_path: Path | None = None
) -> dict[str, Any]:
    """Build the Flask config mapping from environment variables."""
    env = os.environ if environ is None else environ
    instance = instance_path or default_instance_path()

    def get(name: str, default: str) -> str:
        return env.get(name, default)

    database_url = env.get("DATABASE_URL") or f"sqlite:///{instance / 'quote_service.sqlite3'}"
    redis_url = get("REDIS_URL", "")
    secret_key = env.get("SECRET_KEY", "")

    return {
        "SECRET_KEY": secret_key,
        "SQLALCHEMY_DATABASE_URI": normalise_database_url(database_url),
        "REDIS_URL": redis_url,
        "SMTP_HOST": get("SMTP_HOST", ""),
        "SMTP_PORT": parse_int("SMTP_PORT", get("SMTP_PORT", "25"), minimum=1),
        "SMTP_USERNAME": get("SMTP_USERNAME", ""),
        "SMTP_PASSWORD": get("SMTP_PASSWORD", ""),
        "SMTP_STARTTLS": parse_bool("SMTP_STARTTLS", get("SMTP_STARTTLS", "false")),
        "SMTP_TIMEOUT_SECONDS": parse_float(
            "SMTP_TIMEOUT_SECONDS", get("SMTP_TIMEOUT_SECONDS", "10"), minimum=0.1
        ),
        "MAIL_FROM": get("MAIL_FROM", "Quote Service <no-reply@quote-service.example>"),
        "MAIL_DIR": get("MAIL_DIR", str(instance / "mail")),
        "MAIL_TEMPLATES_DIR": get("MAIL_TEMPLATES_DIR", ""),
        "SLA_FIRST_RESPONSE_HOURS": parse_int(
            "SLA_FIRST_RESPONSE_HOURS", get("SLA_FIRST_RESPONSE_HOURS", "24"), minimum=1
        ),
        # Clinic quotes: how many clinics are invited at once, and how long each has.
        "QUOTE_FANOUT": parse_int("QUOTE_FANOUT", get("QUOTE_FANOUT", "3"), minimum=1),
        "CLINIC_RESPONSE_HOURS": parse_float(
            "CLINIC_RESPONSE_HOURS", get("CLINIC_RESPONSE_HOURS", "48"), minimum=0.001
        ),
        "PUBLIC_BASE_URL": get("PUBLIC_BASE_URL", "http://127.0.0.1:5000").rstrip("/"),
        # Who the patient is dealing with, shown on the form and in every patient
        # email. The defaults are samples for `make run`, marked so: a deployment
        # sets its own.
        "ORGANISATION_NAME": get("ORGANISATION_NAME", SAMPLE_ORGANISATION_NAME).strip(),
        "ORGANISATION_ADDRESS": get("ORGANISATION_ADDRESS", SAMPLE_ORGANISATION_ADDRESS).strip(),
        "CONTACT_EMAIL": get("CONTACT_EMAIL", SAMPLE_CONTACT_EMAIL).strip(),
        "PRIVACY_POLICY_URL": parse_http_url(
            "PRIVACY_POLICY_URL", get("PRIVACY_POLICY_URL", SAMPLE_PRIVACY_POLICY_URL)
        ),
        "NOTIFICATION_MAX_ATTEMPTS": parse_int(
            "NOTIFICATION_MAX_ATTEMPTS", get("NOTIFICATION_MAX_ATTEMPTS", "8"), minimum=1
        ),
        "NOTIFICATION_RETRY_BASE_SECONDS": parse_float(
            "NOTIFICATION_RETRY_BASE_SECONDS", get("NOTIFICATION_RETRY_BASE_SECONDS", "30")
        ),
        "NOTIFICATION_RETRY_MAX_SECONDS": parse_float(
            "NOTIFICATION_RETRY_MAX_SECONDS", get("NOTIFICATION_RETRY_MAX_SECONDS", "3600")
        ),
        "COORDINATORS_EMAIL": get("COORDINATORS_EMAIL", "coordinators@quote-service.example"),
        # Alerts the public can cause (unroutable, SLA): this many of a kind per
        # interval are sent one by one, the rest go out in one digest per interval.
        "COORDINATOR_ALERTS_PER_INTERVAL": parse_int(
            "COORDINATOR_ALERTS_PER_INTERVAL",
            get("COORDINATOR_ALERTS_PER_INTERVAL", "5"),
            minimum=0,
        ),
        "COORDINATOR_ALERT_INTERVAL_MINUTES": parse_float(
            "COORDINATOR_ALERT_INTERVAL_MINUTES",
            get("COORDINATOR_ALERT_INTERVAL_MINUTES", "15"),
            minimum=0.01,
        ),
        "DATA_ENCRYPTION_KEYS": parse_fernet_keys(get("DATA_ENCRYPTION_KEYS", "")),
        "RETENTION_DAYS": parse_int("RETENTION_DAYS", get("RETENTION_DAYS", "730"), minimum=1),
        # Days after closing or rejecting during which a coordinator may reopen a request.
        "REOPEN_DAYS": parse_int("REOPEN_DAYS", get("REOPEN_DAYS", "30"), minimum=0),
        "MAIL_BODY_RETENTION_DAYS": parse_int(
            "MAIL_BODY_RETENTION_DAYS", get("MAIL_BODY_RETENTION_DAYS", "30"), minimum=1
        ),
        "CORS_ORIGINS": parse_list(get("CORS_ORIGINS", "")),
        "TRUSTED_PROXY_COUNT": parse_int("TRUSTED_PROXY_COUNT", get("TRUSTED_PROXY_COUNT", "0")),
        # Empty: /metrics is open (make run; a port only Prometheus reaches). Set:
        # a scrape must send `Authorization: Bearer <token>`.
        "METRICS_TOKEN": get("METRICS_TOKEN", "").strip(),
        # false: no /docs and no /openapi.json (the spec is still built for tests).
        "PUBLIC_API_DOCS": parse_bool("PUBLIC_API_DOCS", get("PUBLIC_API_DOCS", "true")),
        # Days a new API token is valid (`users create --expires-days` overrides);
        # 0: tokens never expire.
        "API_TOKEN_EXPIRES_DAYS": parse_int(
            "API_TOKEN_EXPIRES_DAYS", get("API_TOKEN_EXPIRES_DAYS", "90")
        ),
        # Requests the intake takes (a refused one does not count), and, looser,
        # every intake POST whatever its answer: a cap against abuse.
        "RATE_LIMIT_INTAKE": get("RATE_LIMIT_INTAKE", "10/minute;100/day"),
        "RATE_LIMIT_INTAKE_ATTEMPTS": get("RATE_LIMIT_INTAKE_ATTEMPTS", "30/minute;300/day"),
        # Posts on a patient's link (interest, withdrawal, privacy requests), per address.
        "RATE_LIMIT_PATIENT_LINK": get("RATE_LIMIT_PATIENT_LINK", "20/minute;200/day"),
        "ACKNOWLEDGEMENTS_PER_RECIPIENT_PER_DAY": parse_int(
            "ACKNOWLEDGEMENTS_PER_RECIPIENT_PER_DAY",
            get("ACKNOWLEDGEMENTS_PER_RECIPIENT_PER_DAY", "3"),
            minimum=1,
        ),
        # Rate limits live in Redis when there is one. If that Redis is down the
        # limiter falls back to per-process memory and the intake keeps answering:
        # a few extra requests are a smaller harm than refusing every patient.
        "RATELIMIT_STORAGE_OPTIONS": {"socket_timeout": 0.2, "socket_connect_timeout": 0.2},
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        "RATELIMIT_SWALLOW_ERRORS": True,
        # No X-RateLimit-* headers: they read the window from Redis for every
        # answer. A 429's Retry-After is set by extensions.retry_after_on_refusals.
        "RATELIMIT_HEADERS_ENABLED": False,
        "RATELIMIT_KEY_PREFIX": "quote-service",
        "OUTBOX_RELAY_SECONDS": parse_float(
            "OUTBOX_RELAY_SECONDS", get("OUTBOX_RELAY_SECONDS", "1"), minimum=0.05
        ),
        "OUTBOX_LEASE_SECONDS": parse_float(
            "OUTBOX_LEASE_SECONDS", get("OUTBOX_LEASE_SECONDS", "30"), minimum=1
        ),
        # Runs of one outbox row that may fail (an error no retry mended, or a
        # worker that died holding it) before the row is given up as failed.
        "OUTBOX_MAX_FAILURES": parse_int(
            "OUTBOX_MAX_FAILURES", get("OUTBOX_MAX_FAILURES", "5"), minimum=1
        ),
        "OUTBOX_BATCH_SIZE": parse_int(
            "OUTBOX_BATCH_SIZE", get("OUTBOX_BATCH_SIZE", "100"), minimum=1
        ),
        # Due rows of one task that the relay puts in one message: a backlog is
        # worked through in fewer task round trips; 1 gives each row its own.
        "OUTBOX_ROWS_PER_MESSAGE": parse_int(
            "OUTBOX_ROWS_PER_MESSAGE", get("OUTBOX_ROWS_PER_MESSAGE", "10"), minimum=1
        ),
        "DATABASE_STATEMENT_TIMEOUT_MS": parse_int(
            "DATABASE_STATEMENT_TIMEOUT_MS", get("DATABASE_STATEMENT_TIMEOUT_MS", "5000")
        ),
        "DATABASE_CONNECT_TIMEOUT_SECONDS": parse_int(
            "DATABASE_CONNECT_TIMEOUT_SECONDS",
            get("DATABASE_CONNECT_TIMEOUT_SECONDS", "5"),
            minimum=1,
        ),
        "LOG_LEVEL": parse_choice("LOG_LEVEL", get("LOG_LEVEL", "INFO"), LOG_LEVELS),
        "LOG_FORMAT": parse_choice("LOG_FORMAT", get("LOG_FORMAT", "json"), LOG_FORMATS),
        # prometheus-client reads this variable itself when it is imported;
        # it is read here too, so /metrics knows to add up every process.
        "PROMETHEUS_MULTIPROC_DIR": parse_existing_dir(
            "PROMETHEUS_MULTIPROC_DIR", get("PROMETHEUS_MULTIPROC_DIR", "")
        ),
        "WORKER_METRICS_PORT": parse_port_or_none(
            "WORKER_METRICS_PORT", get("WORKER_METRICS_PORT", "")
        ),
        # The console (HTML pages at /console/): a signed session cookie that
        # scripts cannot read, sent on top-level navigation only, HTTPS-only
        # when SESSION_COOKIE_SECURE is set (a deployment behind TLS).
        "SESSION_COOKIE_SECURE": parse_bool(
            "SESSION_COOKIE_SECURE", get("SESSION_COOKIE_SECURE", "false")
        ),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_NAME": "console_session",
        "CONSOLE_IDLE_MINUTES": parse_int(
            "CONSOLE_IDLE_MINUTES", get("CONSOLE_IDLE_MINUTES", "480"), minimum=1
        ),
        # How long an open page counts as "viewing" after its last heartbeat;
        # the page beats three times in that span.
        "CONSOLE_PRESENCE_SECONDS": parse_float(
            "CONSOLE_PRESENCE_SECONDS", get("CONSOLE_PRESENCE_SECONDS", "45"), minimum=0.5
        ),
        # CSRF is checked by the console blueprint itself, so the JSON API
        # (bearer tokens, no cookies) and the public intake are left alone.
        "WTF_CSRF_CHECK_DEFAULT": False,
        # A token lives as long as the session: a page left open stays usable.
        "WTF_CSRF_TIME_LIMIT": None,
        # Werkzeug answers 413 for larger bodies before any view runs.
        "MAX_CONTENT_LENGTH": 64 * 1024,
        "SQLALCHEMY_TRACK_MODIFICATIONS": False,
        "API_TITLE": "Quote service",
        "API_VERSION": "v1",
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_JSON_PATH": "openapi.json",
        "OPENAPI_SWAGGER_UI_PATH": "docs",
        # Swagger UI from the package's own files (vendored from npm's swagger-ui-dist),
        # so the docs work offline; no validator badge, which would call a public server.
        "OPENAPI_SWAGGER_UI_URL": "/static/vendor/swagger-ui/",
        "OPENAPI_SWAGGER_UI_CONFIG": {"validatorUrl": None},
    }


MAIL_QUEUE = "mail"
# A task is killed after TASK_TIME_LIMIT seconds. Retries do not wait inside
# Celery (the outbox schedules them), so the broker's visibility timeout only
# has to outlast the longest task plus the longest retry backoff (1 h).
TASK_SOFT_TIME_LIMIT = 60
TASK_TIME_LIMIT = 90
VISIBILITY_TIMEOUT = 2 * 3600


def derived_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """Settings that follow from others, computed once overrides are applied."""
    return {
        "SQLALCHEMY_DATABASE_URI": normalise_database_url(config["SQLALCHEMY_DATABASE_URI"]),
        "SQLALCHEMY_ENGINE_OPTIONS": engine_options(
            config["SQLALCHEMY_DATABASE_URI"],
            config["DATABASE_STATEMENT_TIMEOUT_MS"],
            config["DATABASE_CONNECT_TIMEOUT_SECONDS"],
            config.get("DATABASE_PRE_PING", True),
        ),
        "RATELIMIT_STORAGE_URI": config["REDIS_URL"] or "memory://",
        # The signed cookie itself ends after the idle time; each request renews it.
        "PERMANENT_SESSION_LIFETIME": timedelta(minutes=config["CONSOLE_IDLE_MINUTES"]),
        # flask-smorest serves neither /openapi.json nor /docs without a prefix.
        "OPENAPI_URL_PREFIX": "/" if config["PUBLIC_API_DOCS"] else None,
        "CELERY": celery_settings(config["REDIS_URL"]),
    }


def celery_settings(redis_url: str) -> dict[str, Any]:
    """Celery configuration; with no REDIS_URL, an in-process broker for `make run`."""
    return {
        "broker_url": redis_url or "memory://localhost/",
        "task_ignore_result": True,
        # Emails on a queue of their own: an acknowledgement does not wait behind
        # every routing already queued. Workers consume both (task_queues).
        "task_queues": (Queue("celery"), Queue(MAIL_QUEUE)),
        "task_routes": {"quote.send_notification": {"queue": MAIL_QUEUE}},
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_soft_time_limit": TASK_SOFT_TIME_LIMIT,
        "task_time_limit": TASK_TIME_LIMIT,
        "worker_prefetch_multiplier": 1,
        # Beat's state file: under instance/, the app's one writable folder, never
        # beside the code; a deployment may put it elsewhere with `--schedule`.
        "beat_schedule_filename": str(default_instance_path() / "celerybeat-schedule"),
        "worker_hijack_root_logger": False,
        "broker_connection_retry_on_startup": True,
        # The relay publishes; a dead broker must fail it fast, not hang it.
        "task_publish_retry": False,
        # On a lost broker connection, let running tasks finish: cancelling one
        # that is inside an SMTP send would send that email again after the
        # lease. Their acks are lost with the connection, so the messages come
        # back, and the handlers see their work done.
        "worker_cancel_long_running_tasks_on_connection_loss": False,
        "broker_transport_options": {
            "visibility_timeout": VISIBILITY_TIMEOUT,
            "socket_timeout": 5,
            "socket_connect_timeout": 2,
        },
    }


def engine_options(
    database_url: str, statement_timeout_ms: int, connect_timeout: int, pre_ping: bool = True
) -> dict:
    """SQLAlchemy engine options: bounded waits so a dead database never hangs a request.

    `pre_ping`: test each pooled connection when it is taken (a round trip per
    transaction), so a connection the server closed never fails a request.
    """
    # hide_parameters: statement parameters hold personal data and must never
    # reach an exception message or a log line.
    options: dict[str, Any] = {"pool_pre_ping": pre_ping, "hide_parameters": True}
    if database_url.startswith("postgresql"):
        options["connect_args"] = {
            "connect_timeout": connect_timeout,
            "options": f"-c statement_timeout={statement_timeout_ms}",
        }
        options["pool_timeout"] = connect_timeout
    elif database_url.startswith("sqlite"):
        # The embedded default: wait on a locked file instead of failing at once.
        options["connect_args"] = {"timeout": connect_timeout}
    return options
