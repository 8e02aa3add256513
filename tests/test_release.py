"""The release: one version in pyproject.toml, at /healthz, on the image and in the changelog."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from flask.testing import FlaskClient

from quote_service.version import __version__
from tests.test_compose import final_stage

ROOT = Path(__file__).resolve().parent.parent
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]


def test_healthz_names_the_version_of_pyproject(client: FlaskClient):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "version": VERSION}
    assert __version__ == VERSION


def test_the_changelog_has_an_entry_for_this_version():
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    headings = re.findall(r"^## \[?([0-9][^\]\s]*)\]?", changelog, flags=re.MULTILINE)
    assert headings and headings[0] == VERSION


def test_the_image_carries_oci_labels_with_this_version():
    labels: dict[str, str] = {}
    for keyword, rest in final_stage():
        if keyword == "LABEL":
            for key, value in re.findall(r'(\S+?)="([^"]*)"', rest):
                labels[key] = value
    assert labels["org.opencontainers.image.version"] == VERSION
    for key in ("title", "description", "revision", "created"):
        assert labels.get(f"org.opencontainers.image.{key}"), key
