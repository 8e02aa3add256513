"""docker-compose.yml and the Dockerfile run this project's real entry points.

There is no Docker engine where the tests run, so the files are read instead:
a real compose parser validates the file (every profile), every command must
resolve to a command, an app or a Celery app of this project, every variable
must be one the app reads, only the proxy publishes ports, and the start order,
profiles and health checks must be as docs/OPERATIONS.md describes.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import re
import shlex
import shutil
import subprocess
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
SERVICES = {
    "proxy",
    "postgres",
    "redis",
    "migrate",
    "api",
    "worker",
    "beat",
    "backup",
    "mailpit",
    "prometheus",
    "alertmanager",
    "grafana",
}
APP_SERVICES = ("migrate", "api", "worker", "beat")
PROFILES = {
    "mailpit": ["dev"],
    "prometheus": ["monitoring"],
    "alertmanager": ["monitoring"],
    "grafana": ["monitoring"],
}
# What `.env` must set: `docker compose` refuses to start without each.
REQUIRED = (
    "POSTGRES_PASSWORD",
    "SECRET_KEY",
    "DATA_ENCRYPTION_KEYS",
    "SMTP_HOST",
    "MAIL_FROM",
    "COORDINATORS_EMAIL",
    "ORGANISATION_NAME",
    "ORGANISATION_ADDRESS",
    "CONTACT_EMAIL",
    "PRIVACY_POLICY_URL",
)
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
    in_dot_env = {
        "DATA_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "PRIVACY_POLICY_URL": "https://example.org/privacy",
    }

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
    assert services["proxy"]["image"] == "caddy:2"
    assert services["postgres"]["image"] == "postgres:16"
    assert services["backup"]["image"] == services["postgres"]["image"]
    assert services["redis"]["image"] == "redis:7"
    assert services["mailpit"]["image"].startswith("axllent/mailpit")
    assert services["prometheus"]["image"].startswith("prom/prometheus:")
    assert services["grafana"]["image"].startswith("grafana/grafana:")
    assert services["alertmanager"]["image"].startswith("prom/alertmanager:")


def test_the_catcher_and_monitoring_run_only_in_their_profiles(services: dict[str, Any]):
    profiled = {
        name: service["profiles"] for name, service in services.items() if "profiles" in service
    }
    assert profiled == PROFILES
    # A service that always runs may not wait for one that may not.
    for name, service in services.items():
        if name not in PROFILES:
            assert not set(depends_on(service)) & set(PROFILES), name


def compose_command() -> list[str] | None:
    """The Compose plugin where it is installed, else Debian's `docker-compose`."""
    docker = shutil.which("docker")
    if docker:
        plugin = subprocess.run([docker, "compose", "version"], capture_output=True, check=False)
        if plugin.returncode == 0:
            return [docker, "compose"]
    standalone = shutil.which("docker-compose")
    return [standalone] if standalone else None


def run_compose(*args: str, environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = compose_command()
    if command is None:
        pytest.skip(
            "no compose parser: install the Compose plugin or Debian's docker-compose "
            "(apt-get install docker-compose; .ci/run does it as root)"
        )
    env = {key: value for key, value in os.environ.items() if key not in REQUIRED}
    return subprocess.run(
        [*command, "--project-directory", str(ROOT), "-f", str(ROOT / "docker-compose.yml"), *args],
        env={**env, **environment},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def dot_env() -> dict[str, str]:
    return {name: "set-in-dot-env" for name in REQUIRED}


@pytest.mark.parametrize("profiles", [[], ["dev", "monitoring"]])
def test_a_real_compose_parser_accepts_the_file(profiles: list[str]):
    flags = [word for profile in profiles for word in ("--profile", profile)]
    result = run_compose(*flags, "config", "--quiet", environment=dot_env())
    assert result.returncode == 0, result.stderr


def test_a_real_compose_parser_refuses_a_missing_secret_by_name():
    # Each of REQUIRED is `${NAME:?...}` (below); one is enough to see the parser refuse.
    name = "POSTGRES_PASSWORD"
    environment = {key: value for key, value in dot_env().items() if key != name}
    result = run_compose("config", "--quiet", environment=environment)
    assert result.returncode != 0
    assert f"Set {name} in .env" in result.stderr


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
    # Reached through the proxy only.
    assert "ports" not in services["api"]
    assert services["api"]["expose"] == ["8000"]


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
    # Mail goes to the relay .env names, over STARTTLS on the submission port by default.
    assert settings["SMTP_HOST"] == "set-in-dot-env"
    assert (settings["SMTP_PORT"], settings["SMTP_STARTTLS"]) == (587, True)
    # Behind exactly one proxy, whose X-Forwarded-For names the client.
    assert settings["TRUSTED_PROXY_COUNT"] == 1
    assert settings["PUBLIC_API_DOCS"] is False
    assert settings["SESSION_COOKIE_SECURE"] is True
    assert settings["METRICS_TOKEN"] == ""


@pytest.mark.parametrize("name", [name for name in REQUIRED if name != "POSTGRES_PASSWORD"])
def test_secrets_have_no_default(compose: dict[str, Any], name: str):
    # `${NAME:?message}` stops `docker compose up` when the variable is not set.
    match = INTERPOLATION.fullmatch(compose["x-app"]["environment"][name])
    assert match is not None and (match["name"], match["op"]) == (name, ":?")


def test_the_database_password_has_no_default_anywhere(services: dict[str, Any]):
    uses = {
        "x-app DATABASE_URL": services["api"]["environment"]["DATABASE_URL"],
        "postgres": services["postgres"]["environment"]["POSTGRES_PASSWORD"],
        "backup": services["backup"]["environment"]["PGPASSWORD"],
    }
    for where, value in uses.items():
        found = [m for m in INTERPOLATION.finditer(value) if m["name"] == "POSTGRES_PASSWORD"]
        assert [m["op"] for m in found] == [":?"], where


@pytest.mark.parametrize("name", ["SMTP_PORT", "SMTP_USERNAME", "SMTP_PASSWORD", "SMTP_STARTTLS"])
def test_the_other_smtp_settings_pass_through_from_dot_env(compose: dict[str, Any], name: str):
    match = INTERPOLATION.fullmatch(compose["x-app"]["environment"][name])
    assert match is not None and match["name"] == name


def test_links_in_emails_point_at_the_public_site(compose: dict[str, Any]):
    # Clinics' invitations and the patient's page must not link to 127.0.0.1.
    assert (
        compose["x-app"]["environment"]["PUBLIC_BASE_URL"] == "https://${SITE_ADDRESS:-localhost}"
    )


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


# --- Ports: the proxy is the one door ------------------------------------------


def published(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(host address, host port) of each published port; "" for every address."""
    result = []
    for entry in service.get("ports", []):
        parts = str(entry).split("/")[0].split(":")
        address = parts[0] if len(parts) == 3 else ""
        result.append((address, parts[-2] if len(parts) >= 2 else parts[0]))
    return result


def test_nothing_but_the_proxy_publishes_a_port(services: dict[str, Any]):
    publishing = {name for name, service in services.items() if "ports" in service}
    assert publishing == {"proxy"}


def test_the_proxy_is_public_on_80_and_443_and_the_rest_on_loopback(services: dict[str, Any]):
    ports = published(services["proxy"])
    public = {port for address, port in ports if address == ""}
    assert public == {"80", "443"}
    assert "443:443/udp" in services["proxy"]["ports"]  # HTTP/3
    # The operators' interfaces: mailpit, Prometheus, Grafana.
    assert {port for address, port in ports if address} == {"8025", "9090", "3000"}
    assert {address for address, _port in ports if address} == {"127.0.0.1"}


def test_the_proxy_fronts_the_api_with_the_shipped_caddyfile(services: dict[str, Any]):
    proxy = services["proxy"]
    assert "./deploy/caddy/Caddyfile:/etc/caddy/Caddyfile:ro" in proxy["volumes"]
    assert {"caddy-data:/data", "caddy-config:/config"} <= set(proxy["volumes"])
    assert proxy["environment"]["SITE_ADDRESS"] == "${SITE_ADDRESS:-localhost}"
    assert "api" in depends_on(proxy)
    caddyfile = (ROOT / "deploy/caddy/Caddyfile").read_text(encoding="utf-8")
    # The API's address inside the network, the default of the Caddyfile's upstream.
    assert "reverse_proxy {$API_UPSTREAM:api:8000}" in caddyfile


def test_every_file_mounted_into_a_container_is_in_the_repository(services: dict[str, Any]):
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts {source}, which is missing"


def test_mail_leaves_through_the_relay_and_the_catcher_is_for_dev(compose: dict[str, Any]):
    environment = compose["x-app"]["environment"]
    assert "mailpit" not in " ".join(str(value) for value in environment.values())
    for name in APP_SERVICES:
        assert "mailpit" not in depends_on(compose["services"][name])
    assert compose["services"]["mailpit"]["profiles"] == ["dev"]


# --- Backups ---------------------------------------------------------------------


def test_the_backup_service_runs_the_shipped_script_into_its_volume(
    compose: dict[str, Any], services: dict[str, Any]
):
    backup = services["backup"]
    assert argv(backup) == ["sh", "/opt/backup/backup.sh", "loop"]
    assert "./deploy/backup:/opt/backup:ro" in backup["volumes"]
    assert "backups:/backups" in backup["volumes"]
    assert "backups" in compose["volumes"]
    environment = backup["environment"]
    assert (environment["PGHOST"], environment["PGUSER"]) == ("postgres", "quote")
    assert environment["PGDATABASE"] == services["postgres"]["environment"]["POSTGRES_DB"]
    assert environment["BACKUP_DIR"] == "/backups"
    assert environment["BACKUP_KEEP_DAYS"] == "${BACKUP_KEEP_DAYS:-14}"
    assert environment["BACKUP_INTERVAL_HOURS"] == "${BACKUP_INTERVAL_HOURS:-24}"
    assert depends_on(backup) == {"postgres": "service_healthy"}
    assert "quote_service-*.dump" in " ".join(backup["healthcheck"]["test"])
    assert backup["init"] is True


# --- Monitoring ------------------------------------------------------------------


def test_prometheus_reads_the_shipped_rules_and_the_metrics_token(services: dict[str, Any]):
    prometheus = services["prometheus"]
    assert "./deploy/prometheus:/etc/prometheus:ro" in prometheus["volumes"]
    assert prometheus["environment"]["METRICS_TOKEN"] == "${METRICS_TOKEN:-}"
    assert services["api"]["environment"]["METRICS_TOKEN"] == "${METRICS_TOKEN:-}"
    script = " ".join(prometheus["entrypoint"])
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    [api_job] = [job for job in config["scrape_configs"] if job["job_name"] == "quote-service-api"]
    token_file = api_job["authorization"]["credentials_file"]
    assert f"> {token_file}" in script
    assert token_file.rsplit("/", 1)[0] in prometheus["tmpfs"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in script


def test_grafana_is_provisioned_with_the_shipped_dashboard(services: dict[str, Any]):
    volumes = services["grafana"]["volumes"]
    assert "./deploy/grafana/provisioning:/etc/grafana/provisioning:ro" in volumes
    assert "./deploy/grafana/dashboards:/var/lib/grafana/dashboards:ro" in volumes
    provider = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/dashboards/quote-service.yml").read_text()
    )
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"


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


def test_alertmanager_mails_through_the_app_s_relay(services: dict[str, Any]):
    manager = services["alertmanager"]
    assert "./deploy/alertmanager:/etc/alertmanager-setup:ro" in manager["volumes"]
    assert manager["entrypoint"][:2] == ["/bin/sh", "/etc/alertmanager-setup/entrypoint.sh"]
    assert "--config.file=/run/alertmanager/alertmanager.yml" in manager["entrypoint"]
    assert "/run/alertmanager" in manager["tmpfs"]
    shared = services["api"]["environment"]
    for name in ("SMTP_HOST", "SMTP_PORT", "SMTP_USERNAME", "SMTP_PASSWORD", "SMTP_STARTTLS"):
        assert manager["environment"][name] == shared[name], name
    for name in ("MAIL_FROM", "COORDINATORS_EMAIL"):
        assert manager["environment"][name] == shared[name], name
    assert manager["environment"]["ALERTS_EMAIL"] == "${ALERTS_EMAIL:-}"
    assert "alertmanager" in depends_on(services["prometheus"])
