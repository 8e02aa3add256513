"""docs/OPERATIONS.md, followed as written: its `.env` starts the stack, its paths exist.

The guide's `.env` recipe is run as it is (openssl makes the secrets), and a
real compose parser and the app's own settings parser accept what it makes;
the scripts, alerts and files the guide names are the ones the repository has.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from quote_service import config
from tests.test_compose import REQUIRED, interpolated, run_compose

ROOT = Path(__file__).resolve().parent.parent
GUIDE = (ROOT / "docs" / "OPERATIONS.md").read_text(encoding="utf-8")
SHELL_BLOCK = re.compile(r"```sh\n(.*?)```", re.DOTALL)


def dot_env_recipe() -> str:
    [recipe] = [block for block in SHELL_BLOCK.findall(GUIDE) if "cat > .env <<EOF" in block]
    return recipe


@pytest.fixture(scope="module")
def dot_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is missing: apt-get install openssl")
    folder = tmp_path_factory.mktemp("server")
    subprocess.run(
        ["bash", "-euc", dot_env_recipe()], cwd=folder, check=True, capture_output=True, timeout=30
    )
    path = folder / ".env"
    assert path.stat().st_mode & 0o077 == 0, ".env must be readable by its owner only"
    values = {}
    for line in path.read_text().splitlines():
        name, _, value = line.partition("=")
        values[name] = value
    return values


def test_the_recipe_sets_every_required_variable_with_fresh_secrets(dot_env: dict[str, str]):
    assert set(REQUIRED) <= set(dot_env)
    for name in ("SECRET_KEY", "DATA_ENCRYPTION_KEYS", "POSTGRES_PASSWORD", "METRICS_TOKEN"):
        assert len(dot_env[name]) >= 32, name
    # Part of the database URL: nothing that needs escaping there.
    assert re.fullmatch(r"[0-9a-f]+", dot_env["POSTGRES_PASSWORD"])


def test_a_real_compose_parser_accepts_the_stack_with_that_env(dot_env: dict[str, str]):
    result = run_compose("--profile", "monitoring", "config", "--quiet", environment=dot_env)
    assert result.returncode == 0, result.stderr


def test_the_app_accepts_the_settings_that_env_gives(dot_env: dict[str, str], tmp_path: Path):
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    environment = {}
    for key, value in compose["services"]["api"]["environment"].items():
        filled = re.sub(
            r"\$\{(\w+)(?::[-?][^}]*)?\}",
            lambda match: dot_env.get(match[1], interpolated(match[0])),
            str(value),
        )
        environment[key] = filled
    environment["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path)
    settings = config.from_environment(environment, instance_path=tmp_path)
    assert settings["DATA_ENCRYPTION_KEYS"] == [dot_env["DATA_ENCRYPTION_KEYS"]]
    assert settings["METRICS_TOKEN"] == dot_env["METRICS_TOKEN"]
    assert settings["MAIL_FROM"] == dot_env["MAIL_FROM"]
    assert settings["SMTP_STARTTLS"] is True


def test_the_backup_scripts_the_guide_runs_are_the_mounted_ones():
    named = set(re.findall(r"/opt/backup/([\w.]+)", GUIDE))
    assert named == {"backup.sh", "restore.sh"}
    for script in named:
        assert (ROOT / "deploy" / "backup" / script).is_file()


def test_the_guide_lists_every_alert():
    rules = yaml.safe_load((ROOT / "deploy" / "prometheus" / "alerts.yml").read_text())
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    listed = set(re.findall(r"`(QuoteService\w+)`", GUIDE))
    assert listed == alerts


def test_the_guide_covers_each_step_from_an_empty_server():
    for heading in (
        "### 1. The `.env` file",
        "### 3. HTTPS: the proxy",
        "### 4. Real mail",
        "### 5. Backups",
        "#### Restoring a backup",
        "### 6. Alerts and dashboards",
        "## Deliverability: mail that reaches patients",
        "## Upgrading",
    ):
        assert heading in GUIDE
    for word in ("SPF", "DKIM", "DMARC", "MAIL_FROM", "spam"):
        assert word in GUIDE
