"""`flask seed`: the demo catalog loads idempotently; texts are versioned, never rewritten."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import text

from quote_service.extensions import db
from quote_service.models import (
    CATALOG_TABLES,
    ConsentText,
    Disclaimer,
    Provider,
    activity_tables,
)
from quote_service.services.catalog import disclaimers_in_scope
from quote_service.services.seed import SeedError, default_catalog_path, seed_catalog

LANGUAGES = ["en", "fr", "nl", "de"]
# Every point DESIGN.md requires, as the disclaimer key that carries it.
REQUIRED_GLOBAL_KEYS = [
    "not-medical-advice",
    "consult-your-physician",
    "no-endorsement",
    "no-warranty",
    "stem-cell-experimental",
]


def demo_catalog() -> dict[str, Any]:
    return yaml.safe_load(default_catalog_path().read_text(encoding="utf-8"))


@pytest.fixture
def reseed(app: Flask) -> Iterator[None]:
    """Put the demo catalog back after a test that loaded another file."""
    yield
    with app.app_context():
        seed_catalog()


def write(tmp_path: Path, catalog: dict[str, Any]) -> Path:
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(catalog, allow_unicode=True), encoding="utf-8")
    return path


def test_demo_catalog_is_marked_as_sample_data(app_context):
    catalog = demo_catalog()
    assert catalog["sample"] is True
    assert "SAMPLE DATA" in default_catalog_path().read_text(encoding="utf-8")
    providers = db.session.execute(db.select(Provider)).scalars().all()
    assert providers and all(p.sample and "(sample)" in p.name for p in providers)
    assert all(p.contact_email.endswith(".example") for p in providers)
    assert {p.destination_code for p in providers} == {"BE", "AG"}


def test_every_required_disclaimer_exists_in_every_language(app_context):
    for language in LANGUAGES:
        keys = {d.key for d in disclaimers_in_scope(language, "BE", "stroke")}
        assert set(REQUIRED_GLOBAL_KEYS) <= keys, language
        assert {"destination-be", "stroke-emergency"} <= keys
        assert "destination-ag" not in keys
        assert "diabetes-type-2-medication" not in keys


def test_stem_cell_disclaimer_names_each_risk(app_context):
    text = next(
        d.text
        for d in disclaimers_in_scope("en", "AG", "diabetes-type-2")
        if d.key == "stem-cell-experimental"
    ).lower()
    for point in ("experimental", "evidence", "vary", "tumour", "immune", "quality"):
        assert point in text


def test_second_run_changes_nothing(runner: FlaskCliRunner, app_context):
    count = db.session.execute(db.select(db.func.count(Disclaimer.id))).scalar()
    result = runner.invoke(args=["seed"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "catalog up to date"
    assert db.session.execute(db.select(db.func.count(Disclaimer.id))).scalar() == count


def test_changed_disclaimer_becomes_a_new_version(
    runner: FlaskCliRunner, app: Flask, tmp_path: Path, reseed
):
    catalog = demo_catalog()
    entry = next(d for d in catalog["disclaimers"] if d["key"] == "no-warranty")
    entry["texts"]["en"] = "Revised wording: no warranty of any kind."
    result = runner.invoke(args=["seed", "--file", str(write(tmp_path, catalog))])
    assert result.exit_code == 0, result.output
    assert "created  disclaimer no-warranty en v2" in result.output

    with app.app_context():
        versions = (
            db.session.execute(
                db.select(Disclaimer)
                .where(Disclaimer.key == "no-warranty", Disclaimer.language == "en")
                .order_by(Disclaimer.version)
            )
            .scalars()
            .all()
        )
        assert [(d.version, d.active) for d in versions] == [(1, False), (2, True)]
        assert versions[0].text != versions[1].text  # the old version is kept as it was
        current = {d.key: d for d in disclaimers_in_scope("en", "BE", "stroke")}
        assert current["no-warranty"].version == 2
        french = {d.key: d for d in disclaimers_in_scope("fr", "BE", "stroke")}
        assert french["no-warranty"].version == 1


def test_changed_consent_text_becomes_a_new_version(
    runner: FlaskCliRunner, app: Flask, tmp_path: Path, reseed
):
    catalog = demo_catalog()
    catalog["consent"]["de"] = "Neue Einwilligung."
    assert runner.invoke(args=["seed", "--file", str(write(tmp_path, catalog))]).exit_code == 0
    with app.app_context():
        rows = db.session.execute(
            db.select(ConsentText.version, ConsentText.text)
            .where(ConsentText.language == "de")
            .order_by(ConsentText.version)
        ).all()
        assert [v for v, _ in rows] == [1, 2]
        assert rows[-1].text == "Neue Einwilligung."


def test_dropped_disclaimer_is_retired_not_deleted(
    runner: FlaskCliRunner, app: Flask, tmp_path: Path, reseed
):
    catalog = demo_catalog()
    catalog["disclaimers"] = [d for d in catalog["disclaimers"] if d["key"] != "stroke-emergency"]
    result = runner.invoke(args=["seed", "--file", str(write(tmp_path, catalog))])
    assert "retired  disclaimer stroke-emergency en" in result.output
    with app.app_context():
        assert "stroke-emergency" not in {d.key for d in disclaimers_in_scope("en", "BE", "stroke")}
        kept = (
            db.session.execute(db.select(Disclaimer).where(Disclaimer.key == "stroke-emergency"))
            .scalars()
            .all()
        )
        assert len(kept) == 4


def test_provider_changes_are_applied_by_slug(
    runner: FlaskCliRunner, app: Flask, tmp_path: Path, reseed
):
    catalog = demo_catalog()
    provider = catalog["providers"][0]
    provider["daily_capacity"] = 99
    provider["conditions"] = ["stroke"]
    result = runner.invoke(args=["seed", "--file", str(write(tmp_path, catalog))])
    assert f"updated  provider {provider['slug']}" in result.output
    with app.app_context():
        row = db.session.execute(
            db.select(Provider).where(Provider.slug == provider["slug"])
        ).scalar_one()
        assert row.daily_capacity == 99
        assert [c.slug for c in row.conditions] == ["stroke"]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda c: c["destinations"][0]["conditions"].append("cancer"), "unknown condition cancer"),
        (lambda c: c["providers"][0].update(destination="FR"), "unknown destination FR"),
        (lambda c: c["disclaimers"][0]["texts"].update(es="Hola"), "unknown language es"),
        (lambda c: c.pop("languages"), "languages"),
        (lambda c: c.update(extra=1), "extra"),
    ],
)
def test_invalid_catalog_file_is_refused_and_writes_nothing(
    runner: FlaskCliRunner, app: Flask, tmp_path: Path, mutate, message: str
):
    catalog = demo_catalog()
    mutate(catalog)
    with app.app_context():
        count = db.session.execute(db.select(db.func.count(Disclaimer.id))).scalar()
    result = runner.invoke(args=["seed", "--file", str(write(tmp_path, catalog))])
    assert result.exit_code != 0
    assert message in result.output
    with app.app_context():
        assert db.session.execute(db.select(db.func.count(Disclaimer.id))).scalar() == count


def test_unreadable_yaml_is_a_seed_error(app_context, tmp_path: Path):
    path = tmp_path / "broken.yaml"
    path.write_text("languages: [en\n", encoding="utf-8")
    with pytest.raises(SeedError, match="cannot read"):
        seed_catalog(path)


def test_the_seed_fills_exactly_the_catalog_tables(app: Flask):
    """Tests and the bench empty `activity_tables()` between runs: they must never hold
    what the seed wrote, and every catalog table must be the seed's."""
    with app.app_context():
        assert CATALOG_TABLES <= set(db.metadata.tables)
        for table in sorted(CATALOG_TABLES):
            count = db.session.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
            assert count > 0, f"the seed wrote nothing to {table}"
        assert not CATALOG_TABLES & set(activity_tables())
        assert {"quote_request", "invitation", "clinic_quote"} <= set(activity_tables())
