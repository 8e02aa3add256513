"""One set of provider rules: the admin API, `flask providers import` and `flask seed` refuse
the same bad provider with the same message."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from quote_service.extensions import db
from quote_service.models import Provider
from quote_service.services.seed import default_catalog_path, seed_catalog
from tests.conftest import Caller

GOOD = {
    "slug": "test-rules-clinic",
    "name": "Rules Test Clinic",
    "destination": "AG",
    "conditions": ["stroke"],
    "languages": ["en"],
    "contact_email": "intake@rules.test.example",
    "daily_capacity": 5,
    "weight": 1,
    "active": True,
}
CSV_HEADER = "slug,name,destination,conditions,languages,contact_email,daily_capacity,weight,active"

BAD_PROVIDERS = [
    pytest.param(
        {"contact_email": "not-an-email"},
        "contact_email",
        "Enter a valid email address: it needs one @ sign, as in name@example.org.",
        id="schema-email",
    ),
    pytest.param(
        {"daily_capacity": -1},
        "daily_capacity",
        "Must be greater than or equal to 0 and less than or equal to 10000.",
        id="schema-capacity",
    ),
    pytest.param(
        # Antigua does not offer type 1 diabetes: only the database knows.
        {"conditions": ["diabetes-type-1"]},
        "conditions",
        "diabetes-type-1 is not offered at AG.",
        id="catalog-condition",
    ),
]


@pytest.fixture
def nothing_stored(app: Flask) -> Iterator[None]:
    """Each refusal must write nothing: no test provider, the demo catalog as it was."""
    yield
    with app.app_context():
        db.session.remove()
        found = db.session.execute(db.select(Provider.slug).where(Provider.slug == GOOD["slug"]))
        assert found.first() is None
        seed_catalog()


def csv_cell(value: Any) -> str:
    if isinstance(value, list):
        return ";".join(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@pytest.mark.parametrize(("overrides", "field", "message"), BAD_PROVIDERS)
def test_the_api_the_csv_import_and_the_seed_refuse_alike(
    client: FlaskClient,
    runner: FlaskCliRunner,
    admin: Caller,
    tmp_path: Path,
    nothing_stored: None,
    overrides: dict[str, Any],
    field: str,
    message: str,
):
    provider = {**GOOD, **overrides}

    response = client.post("/api/v1/providers", json=provider, headers=admin.headers)
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "validation_error"
    assert error["fields"] == {field: [message]}

    rows = tmp_path / "providers.csv"
    cells = ",".join(csv_cell(provider[name]) for name in CSV_HEADER.split(","))
    rows.write_text(f"{CSV_HEADER}\n{cells}\n", encoding="utf-8")
    imported = runner.invoke(args=["providers", "import", "--file", str(rows)])
    assert imported.exit_code == 1
    assert [line for line in imported.output.splitlines() if line.startswith("row ")] == [
        f"row 2: {field}: {message}"
    ]

    catalog = yaml.safe_load(default_catalog_path().read_text(encoding="utf-8"))
    catalog["providers"].append(provider)
    catalog_file = tmp_path / "catalog.yaml"
    catalog_file.write_text(yaml.safe_dump(catalog, allow_unicode=True), encoding="utf-8")
    seeded = runner.invoke(args=["seed", "--file", str(catalog_file)])
    assert seeded.exit_code == 1
    assert message in seeded.output
    assert field in seeded.output
