"""deploy/prometheus, alertmanager and grafana: checked by their tools, on metrics we export.

promtool (Debian's `prometheus` package) checks the configuration and the
rules and runs the rules' unit tests (alerts.test.yml); amtool
(`prometheus-alertmanager`) checks the configuration Alertmanager's entrypoint
writes from the stack's mail settings. The metric names the
alerts and the dashboard use are compared with what the API's `/metrics` and
the worker's metrics server really expose.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from flask.testing import FlaskClient
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

from quote_service.models import NotificationStatus
from worker.observability import TASKS

ROOT = Path(__file__).resolve().parent.parent
PROMETHEUS = ROOT / "deploy" / "prometheus"
GRAFANA = ROOT / "deploy" / "grafana"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool is missing: apt-get install prometheus (.ci/run does it as root)",
)
OUR_METRIC = re.compile(r"\bquote_service_\w+")
# Series Prometheus makes itself for every target.
PROMETHEUS_OWN = {"up"}


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def rules() -> list[dict[str, Any]]:
    return [rule for group in load(PROMETHEUS / "alerts.yml")["groups"] for rule in group["rules"]]


def dashboard() -> dict[str, Any]:
    return json.loads((GRAFANA / "dashboards" / "quote-service.json").read_text(encoding="utf-8"))


def dashboard_expressions() -> list[str]:
    return [target["expr"] for panel in dashboard()["panels"] for target in panel["targets"]]


def sample_names(exposition: str) -> set[str]:
    """Every series name a page can hold: counters' _total, histograms' _bucket..."""
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_count", "_sum", "_created"),
        "gauge": ("",),
        "summary": ("", "_count", "_sum", "_created"),
    }
    names = set()
    for family in text_string_to_metric_families(exposition):
        names.update(family.name + suffix for suffix in suffixes.get(family.type, ("",)))
    return names


@pytest.fixture
def exported(client: FlaskClient) -> set[str]:
    """What Prometheus can scrape: the API's page and the worker's task counters."""
    api = client.get("/metrics").get_data(as_text=True)
    worker = CollectorRegistry()
    worker.register(TASKS)
    return sample_names(api) | sample_names(generate_latest(worker).decode()) | PROMETHEUS_OWN


# --- promtool ------------------------------------------------------------------


@needs_promtool
def test_promtool_accepts_the_configuration(tmp_path: Path):
    # The token file is written by the container's entrypoint; here, next to a copy.
    config = (PROMETHEUS / "prometheus.yml").read_text(encoding="utf-8")
    token = tmp_path / "metrics_token"
    token.write_text("a-metrics-token")
    assert "credentials_file: /run/prometheus/metrics_token" in config
    (tmp_path / "prometheus.yml").write_text(
        config.replace("/run/prometheus/metrics_token", str(token)), encoding="utf-8"
    )
    shutil.copy(PROMETHEUS / "alerts.yml", tmp_path / "alerts.yml")
    result = promtool("check", "config", "prometheus.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@needs_promtool
def test_promtool_accepts_the_alert_rules():
    result = promtool("check", "rules", "alerts.yml", cwd=PROMETHEUS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules())} rules found" in result.stdout


@needs_promtool
def test_the_alerts_fire_as_their_unit_tests_say():
    result = promtool("test", "rules", "alerts.test.yml", cwd=PROMETHEUS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_is_seen_firing_in_a_unit_test():
    alerts = {rule["alert"] for rule in rules()}
    fired = {
        case["alertname"]
        for test in load(PROMETHEUS / "alerts.test.yml")["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert alerts == fired


def test_the_issue_s_alerts_are_all_there():
    expressions = {rule["alert"]: rule["expr"] for rule in rules()}
    assert (
        "quote_service_outbox_oldest_pending_age_seconds"
        in expressions["QuoteServiceOutboxBacklogOld"]
    )
    assert 'status="failed"' in expressions["QuoteServiceEmailsFailed"]
    assert 'status="blocked"' in expressions["QuoteServiceEmailsBlocked"]
    assert "quote_service_readiness_check_up" in expressions["QuoteServiceNotReady"]
    assert "quote_service_sla_breached_requests" in expressions["QuoteServiceSlaBreached"]
    for rule in rules():
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]


# --- Built on what the service exports -------------------------------------------


def test_the_alerts_use_only_metrics_the_service_exports(exported: set[str]):
    for rule in rules():
        used = set(OUR_METRIC.findall(rule["expr"])) | {
            name for name in PROMETHEUS_OWN if re.search(rf"\b{name}\{{", rule["expr"])
        }
        assert used, f"{rule['alert']} watches no metric"
        assert used <= exported, f"{rule['alert']}: {sorted(used - exported)} are not exported"


def test_the_alerts_name_the_scrape_jobs_and_statuses_that_exist():
    jobs = {job["job_name"] for job in load(PROMETHEUS / "prometheus.yml")["scrape_configs"]}
    for rule in rules():
        for job in re.findall(r'job="([^"]+)"', rule["expr"]):
            assert job in jobs, rule["alert"]
        for status in re.findall(r'status="([^"]+)"', rule["expr"]):
            assert status in tuple(NotificationStatus), rule["alert"]


def test_the_dashboard_uses_only_metrics_the_service_exports(exported: set[str]):
    expressions = dashboard_expressions()
    assert expressions
    used = {name for expression in expressions for name in OUR_METRIC.findall(expression)}
    assert used <= exported, sorted(used - exported)
    # Every alert's metric has a panel.
    alerted = {name for rule in rules() for name in OUR_METRIC.findall(rule["expr"])}
    assert alerted <= used, sorted(alerted - used)


def test_the_dashboard_reads_the_provisioned_datasource():
    [source] = load(GRAFANA / "provisioning" / "datasources" / "prometheus.yml")["datasources"]
    assert source["url"] == "http://prometheus:9090"
    board = dashboard()
    assert board["uid"] and board["title"]
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        assert panel["datasource"]["uid"] == source["uid"]
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == source["uid"]


# --- Alertmanager: alerts by email -------------------------------------------------

ALERTMANAGER_SETUP = ROOT / "deploy" / "alertmanager" / "entrypoint.sh"
AMTOOL = shutil.which("amtool")
needs_amtool = pytest.mark.skipif(
    AMTOOL is None,
    reason="amtool is missing: apt-get install prometheus-alertmanager (.ci/run does it as root)",
)


def alertmanager_config(tmp_path: Path, **environment: str) -> tuple[Path, str]:
    """Run the service's entrypoint with `environment`; the config it writes and its output."""
    config = tmp_path / "alertmanager.yml"
    result = subprocess.run(
        ["sh", str(ALERTMANAGER_SETUP)],
        env={"PATH": os.environ["PATH"], "ALERTMANAGER_CONFIG": str(config), **environment},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return config, result.stdout


RELAY = {
    "SMTP_HOST": "smtp.example.org",
    "SMTP_PORT": "587",
    "SMTP_USERNAME": "quotes@example.org",
    "SMTP_PASSWORD": 'a "tricky" \\ password',
    "MAIL_FROM": 'Example "Clinics" <quotes@example.org>',
    "COORDINATORS_EMAIL": "coordinators@example.org",
}


@needs_amtool
def test_amtool_accepts_the_configuration_the_entrypoint_writes(tmp_path: Path):
    config, _ = alertmanager_config(tmp_path, **RELAY)
    result = subprocess.run(
        [AMTOOL, "check-config", str(config)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_alerts_are_mailed_through_the_stack_s_relay(tmp_path: Path):
    config, output = alertmanager_config(tmp_path, **RELAY, ALERTS_EMAIL="ops@example.org")
    settings = load(config)
    assert settings["global"]["smtp_smarthost"] == "smtp.example.org:587"
    assert settings["global"]["smtp_from"] == RELAY["MAIL_FROM"]
    assert settings["global"]["smtp_require_tls"] is True
    assert settings["global"]["smtp_auth_username"] == RELAY["SMTP_USERNAME"]
    # The password is in a file of its own, readable by its owner only, never in the config.
    password = Path(settings["global"]["smtp_auth_password_file"])
    assert password.read_text() == RELAY["SMTP_PASSWORD"]
    assert password.stat().st_mode & 0o077 == 0
    assert "tricky" not in config.read_text()
    [receiver] = settings["receivers"]
    assert settings["route"]["receiver"] == receiver["name"]
    assert [target["to"] for target in receiver["email_configs"]] == ["ops@example.org"]
    assert "alerts go to ops@example.org" in output


def test_without_alerts_email_the_coordinators_get_them_and_plain_smtp_works(tmp_path: Path):
    dev = {**RELAY, "SMTP_HOST": "mailpit", "SMTP_PORT": "1025", "SMTP_STARTTLS": "False"}
    del dev["SMTP_USERNAME"]
    config, _ = alertmanager_config(tmp_path, **dev)
    settings = load(config)
    assert settings["global"]["smtp_smarthost"] == "mailpit:1025"
    assert settings["global"]["smtp_require_tls"] is False
    assert "smtp_auth_username" not in settings["global"]
    [receiver] = settings["receivers"]
    assert receiver["email_configs"][0]["to"] == "coordinators@example.org"


def test_prometheus_sends_its_alerts_to_the_stack_s_alertmanager():
    config = load(PROMETHEUS / "prometheus.yml")
    [manager] = config["alerting"]["alertmanagers"]
    assert manager["static_configs"][0]["targets"] == ["alertmanager:9093"]
