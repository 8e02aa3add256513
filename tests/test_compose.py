"""docker-compose.yml and the Dockerfile run this project's real entry points.

There is no Docker engine where the tests run, so the files are read instead:
every command must resolve to a command, an app or a Celery app of this
project, every variable must be one the app reads, and the start order and
health checks must be as docs/OPERATIONS.md describes.
"""

from __future__ import annotations

import fnmatch
import logging
import re
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from celery.app.utils import find_app
from celery.bin.base import CLIContext
from celery.bin.celery import celery as celery_main
from click.testing import CliRunner
from cryptography.fernet import Fernet
from flask import Flask
from flask.cli import cli as flask_main
from gunicorn.config import Config as GunicornConfig
from gunicorn.util import import_app

from quote_service import config, create_app

ROOT = Path(__file__).resolve().parent.parent
SERVICES = {"postgres", "redis", "migrate", "api", "worker", "beat", "mailpit"}
APP_SERVICES = ("migrate", "api", "worker", "beat")
# `${NAME:-default}`, `${NAME:?error}` or `${NAME}`: compose fills these in from .env.
INTERPOLATION = re.compile(r"\$\{(?P<name>\w+)(?:(?P<op>:-|:\?)(?P<arg>[^}]*))?\}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]


def argv(service: dict[str, Any]) -> list[str]:
    command = service["command"]
    return shlex.split(command) if isinstance(command, str) else list(command)


def shell_commands(service: dict[str, Any]) -> list[list[str]]:
    """The commands of a service, splitting `sh -c "a && b"` into its parts."""
    words = argv(service)
    if words[:2] == ["sh", "-c"]:
        return [shlex.split(part) for part in words[2].split("&&")]
    return [words]


class RecordingEnvironment(Mapping[str, str]):
    """An empty environment that notes every variable asked of it."""

    def __init__(self) -> None:
        self.asked: set[str] = set()

    def __getitem__(self, name: str) -> str:
        self.asked.add(name)
        raise KeyError(name)

    def __iter__(self):  # noqa: ANN204
        return iter(())

    def __len__(self) -> int:
        return 0


def variables_the_app_reads() -> set[str]:
    environment = RecordingEnvironment()
    config.from_environment(environment, instance_path=ROOT / "instance")
    return environment.asked


def interpolated(value: str) -> str:
    """A value as compose would pass it: defaults filled in, required ones as .env sets them."""
    in_dot_env = {"DATA_ENCRYPTION_KEYS": Fernet.generate_key().decode()}

    def fill(match: re.Match[str]) -> str:
        if match["op"] == ":-":
            return match["arg"]
        return in_dot_env.get(match["name"], "set-in-dot-env") if match["op"] == ":?" else ""

    return INTERPOLATION.sub(fill, value)


def depends_on(service: dict[str, Any]) -> dict[str, str]:
    return {name: spec["condition"] for name, spec in service.get("depends_on", {}).items()}


# --- The services ------------------------------------------------------------


def test_every_service_of_the_stack_is_there(services: dict[str, Any]):
    assert set(services) == SERVICES
    assert services["postgres"]["image"] == "postgres:16"
    assert services["redis"]["image"] == "redis:7"
    assert services["mailpit"]["image"].startswith("axllent/mailpit")


def test_app_services_share_one_definition(compose: dict[str, Any], services: dict[str, Any]):
    shared = compose["x-app"]
    merges = [
        event.anchor
        for event in yaml.parse((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
        if isinstance(event, yaml.AliasEvent)
    ]
    assert merges.count("app") == len(APP_SERVICES)
    for name in APP_SERVICES:
        service = services[name]
        assert service["build"] == shared["build"] == "."
        assert service["image"] == shared["image"]
        # A service may add its own settings (metrics), never change the shared ones.
        assert service["environment"].items() >= shared["environment"].items()


# --- Commands are real entry points ------------------------------------------


def test_migrate_runs_registered_flask_commands(services: dict[str, Any]):
    commands = shell_commands(services["migrate"])
    assert [words[3:] for words in commands] == [["db", "upgrade"], ["seed"]]
    app_commands = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"}).cli.commands
    assert "seed" in app_commands
    for words in commands:
        assert words[:3] == ["flask", "--app", "quote_service"]
        # Resolved the way the `flask` executable does, plugins (Flask-Migrate's db) included.
        result = CliRunner().invoke(flask_main, [*words[1:], "--help"])
        assert result.exit_code == 0, result.output
        assert f"Usage: flask {' '.join(words[3:])} " in result.output.replace("  ", " ")


def test_api_serves_the_app_factory_with_gunicorn(services: dict[str, Any]):
    words = argv(services["api"])
    assert words[0] == "gunicorn"
    options = GunicornConfig().parser().parse_args(words[1:])
    assert options.args == ["quote_service:create_app()"]
    assert options.bind == ["0.0.0.0:8000"]
    assert isinstance(import_app(options.args[0]), Flask)
    assert "8000:8000" in services["api"]["ports"]


@pytest.mark.parametrize(("service", "subcommand"), [("worker", "worker"), ("beat", "beat")])
def test_celery_services_run_the_worker_packages_app(
    services: dict[str, Any], service: str, subcommand: str
):
    import worker

    words = argv(services[service])
    assert words[:4] == ["celery", "-A", "worker", subcommand]
    assert "--loglevel=INFO" in words
    assert find_app("worker") is worker.celery
    # Every option must be one Celery's command takes, with a valid value: parsed, not run.
    state = CLIContext(app=worker.celery, no_color=True, workdir=None, quiet=True)
    group = celery_main.make_context("celery", words[1:3], obj=state)
    command = celery_main.get_command(group, subcommand)
    assert command is not None
    options = command.make_context(subcommand, words[4:], parent=group).params
    assert options["loglevel"] == logging.INFO


# --- Settings ------------------------------------------------------------------


def test_app_services_set_only_variables_the_app_reads(
    compose: dict[str, Any], services: dict[str, Any]
):
    known = variables_the_app_reads()
    assert {"DATABASE_URL", "REDIS_URL", "SMTP_HOST", "DATA_ENCRYPTION_KEYS"} <= known
    for name in APP_SERVICES:
        names = set(services[name]["environment"])
        assert names <= known, f"{name} sets {sorted(names - known)}, which the app never reads"
    assert {
        "DATABASE_URL",
        "REDIS_URL",
        "SMTP_HOST",
        "SMTP_PORT",
        "MAIL_FROM",
        "SECRET_KEY",
        "DATA_ENCRYPTION_KEYS",
        "CORS_ORIGINS",
    } <= set(compose["x-app"]["environment"])


@pytest.mark.parametrize("name", APP_SERVICES)
def test_the_settings_parse_and_point_at_the_stacks_services(
    services: dict[str, Any], name: str, tmp_path: Path
):
    service = services[name]
    environment = {key: interpolated(str(value)) for key, value in service["environment"].items()}
    metrics_dir = environment.get("PROMETHEUS_MULTIPROC_DIR")
    if metrics_dir:
        # It must exist when the app starts, and start empty: a tmpfs is both.
        assert metrics_dir in service["tmpfs"]
        environment["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path)
    settings = config.from_environment(environment, instance_path=ROOT / "instance")
    assert settings["SQLALCHEMY_DATABASE_URI"].startswith("postgresql+psycopg://quote:")
    assert "@postgres:5432/" in settings["SQLALCHEMY_DATABASE_URI"]
    assert settings["REDIS_URL"].startswith("redis://redis:6379/")
    assert (settings["SMTP_HOST"], settings["SMTP_PORT"]) == ("mailpit", 1025)
    assert settings["TRUSTED_PROXY_COUNT"] == 0


@pytest.mark.parametrize("name", ["SECRET_KEY", "DATA_ENCRYPTION_KEYS"])
def test_secrets_have_no_default(compose: dict[str, Any], name: str):
    # `${NAME:?message}` stops `docker compose up` when the variable is not set.
    match = INTERPOLATION.fullmatch(compose["x-app"]["environment"][name])
    assert match is not None and (match["name"], match["op"]) == (name, ":?")


# --- Start order and health ----------------------------------------------------


def test_health_checks_exist_where_the_start_order_waits_for_them(services: dict[str, Any]):
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    api_check = " ".join(services["api"]["healthcheck"]["test"])
    assert "http://127.0.0.1:8000/readyz" in api_check
    for name, service in services.items():
        for target, condition in depends_on(service).items():
            assert target in services, f"{name} waits for an unknown service {target}"
            if condition == "service_healthy":
                assert "healthcheck" in services[target], f"{target} has no healthcheck"


def test_migrations_run_first_and_once(services: dict[str, Any]):
    assert depends_on(services["migrate"]) == {"postgres": "service_healthy"}
    assert services["migrate"]["restart"] == "no"
    for name in ("api", "worker", "beat"):
        waits = depends_on(services[name])
        assert waits["migrate"] == "service_completed_successfully"
        assert waits["redis"] == "service_healthy"
        assert waits["postgres"] == "service_healthy"


def test_redis_keeps_its_queue(compose: dict[str, Any], services: dict[str, Any]):
    command = " ".join(argv(services["redis"]))
    assert "--appendonly yes" in command
    assert "--maxmemory-policy noeviction" in command
    assert "redis-data:/data" in services["redis"]["volumes"]
    assert "postgres-data:/var/lib/postgresql/data" in services["postgres"]["volumes"]
    assert {"redis-data", "postgres-data"} <= set(compose["volumes"])


def test_mail_goes_to_mailpit_whose_ui_is_published(compose: dict[str, Any]):
    environment = compose["x-app"]["environment"]
    assert (environment["SMTP_HOST"], environment["SMTP_PORT"]) == ("mailpit", "1025")
    published = [port.split(":")[-1] for port in compose["services"]["mailpit"]["ports"]]
    assert published == ["8025"]


# --- The image -------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    instructions = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, rest = line.strip().partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile_instructions()
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[last_from:]


def test_the_image_is_built_in_stages_and_runs_as_a_plain_user():
    instructions = dockerfile_instructions()
    args = dict(
        rest.split("=", 1) for keyword, rest in instructions if keyword == "ARG" and "=" in rest
    )
    stages = [rest for keyword, rest in instructions if keyword == "FROM"]
    assert len(stages) > 1
    final_image = re.sub(r"\$\{(\w+)\}", lambda m: args[m[1]], stages[-1].split()[0])
    assert final_image == "python:3.11-slim"

    final = final_stage()
    users = [rest for keyword, rest in final if keyword == "USER"]
    assert users, "the final stage must name a USER"
    assert users[-1].split(":")[0] not in ("root", "0")
    copies = [rest for keyword, rest in final if keyword == "COPY"]
    assert any(rest.startswith("--from=builder /opt/venv") for rest in copies)


def test_the_final_stage_installs_no_build_tools():
    runs = " ".join(rest for keyword, rest in final_stage() if keyword == "RUN")
    for tool in ("apt-get", "apk ", "gcc", "build-essential", "pip install"):
        assert tool not in runs


def test_every_file_the_image_copies_reaches_the_build():
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for secret in (".env", ".venv", ".git", "instance"):
        assert secret in patterns
    for keyword, rest in dockerfile_instructions():
        if keyword != "COPY" or rest.startswith("--from"):
            continue
        *sources, _target = [word for word in rest.split() if not word.startswith("--")]
        for source in sources:
            assert (ROOT / source).exists(), source
            assert not any(fnmatch.fnmatch(source, pattern) for pattern in patterns), source
