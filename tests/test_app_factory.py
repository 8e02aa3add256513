"""The factory and the settings it reads from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from quote_service import create_app
from quote_service.config import ConfigError, from_environment, normalise_database_url


def test_factory_takes_test_config():
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    assert app.testing
    assert app.config["MAX_CONTENT_LENGTH"] == 64 * 1024


def test_defaults_need_no_variable(tmp_path):
    settings = from_environment({}, instance_path=tmp_path)
    assert settings["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'quote_service.sqlite3'}"
    assert settings["SMTP_STARTTLS"] is False
    assert settings["OUTBOX_RELAY_SECONDS"] == 1

    app = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})
    assert app.config["CELERY"]["broker_url"] == "memory://localhost/"
    assert app.config["RATELIMIT_STORAGE_URI"] == "memory://"


def test_redis_url_drives_broker_and_rate_limits_even_when_overridden():
    app = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://", "REDIS_URL": "redis://h:1/2"})
    assert app.config["CELERY"]["broker_url"] == "redis://h:1/2"
    assert app.config["RATELIMIT_STORAGE_URI"] == "redis://h:1/2"
    assert app.extensions["celery"].conf.broker_url == "redis://h:1/2"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
        ("sqlite:///x.db", "sqlite:///x.db"),
    ],
)
def test_both_postgres_url_forms_are_accepted(url: str, expected: str):
    assert normalise_database_url(url) == expected


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SMTP_STARTTLS", "sometimes"),
        ("SMTP_PORT", "twenty-five"),
        ("SMTP_PORT", "0"),
        ("TRUSTED_PROXY_COUNT", "-1"),
        ("OUTBOX_RELAY_SECONDS", "soon"),
        ("DATABASE_URL", "not a url"),
    ],
)
def test_malformed_settings_stop_the_start(name: str, value: str, tmp_path):
    with pytest.raises(ConfigError, match=name):
        from_environment({name: value}, instance_path=tmp_path)


@pytest.mark.parametrize("value", ["true", "1", "yes", "on", "TRUE"])
def test_boolean_settings(value: str, tmp_path):
    assert from_environment({"SMTP_STARTTLS": value}, instance_path=tmp_path)["SMTP_STARTTLS"]


def test_lists_are_comma_separated(tmp_path):
    settings = from_environment(
        {"CORS_ORIGINS": "https://a.example, https://b.example,"}, instance_path=tmp_path
    )
    assert settings["CORS_ORIGINS"] == ["https://a.example", "https://b.example"]


def test_worker_module_builds_the_celery_app_from_the_flask_app(monkeypatch, tmp_path):
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6399/3")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'w.sqlite3'}")
    import importlib

    import worker

    worker = importlib.reload(worker)
    assert worker.celery.conf.broker_url == "redis://127.0.0.1:6399/3"
    assert worker.celery.conf.task_acks_late is True
    assert worker.celery.conf.worker_prefetch_multiplier == 1
    assert worker.flask_app.extensions["celery"] is worker.celery


def test_beat_keeps_its_schedule_file_under_instance():
    """Beat writes its state beside the app's other local files, never among the code."""
    app = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})
    schedule = Path(app.extensions["celery"].conf.beat_schedule_filename)
    assert schedule.parent == Path(app.instance_path)
    assert schedule.name == "celerybeat-schedule"
