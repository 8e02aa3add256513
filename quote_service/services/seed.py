"""Loading the catalog data file into the database, idempotently.

A second run with the same file changes nothing. A changed disclaimer or
consent text becomes a new version; old versions are never rewritten, since
sent messages and recorded consents point at them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import marshmallow as ma
import yaml

from quote_service.errors import InvalidFields
from quote_service.extensions import db
from quote_service.models import (
    Condition,
    ConsentText,
    Destination,
    Disclaimer,
    Language,
    QuoteItem,
    Treatment,
)
from quote_service.schemas.catalog import CatalogFileSchema
from quote_service.services import providers


class SeedError(ValueError):
    """The catalog file cannot be loaded; nothing was written."""


@dataclass
class SeedReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.retired)


def default_catalog_path() -> Path:
    return Path(str(resources.files("quote_service") / "data" / "catalog.yaml"))


def read_catalog_file(path: Path) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise SeedError(f"cannot read {path}: {error}") from None
    try:
        return CatalogFileSchema().load(raw if raw is not None else {})
    except ma.ValidationError as error:
        # json.dumps(default=str): the messages may be lazy (translated) strings.
        messages = json.dumps(error.messages, default=str, ensure_ascii=False)
        raise SeedError(f"{path} is not a valid catalog: {messages}") from None


def seed_catalog(path: Path | None = None) -> SeedReport:
    """Load the catalog file in one transaction and report what changed."""
    path = path or default_catalog_path()
    data = read_catalog_file(path)
    report = SeedReport()
    try:
        _seed_languages(data["languages"], report)
        _seed_named(Treatment, data["treatments"], report)
        _seed_named(Condition, data["conditions"], report)
        _seed_named(QuoteItem, data["quote_items"], report)
        db.session.flush()
        _seed_destinations(data["destinations"], report)
        db.session.flush()
        refused = _seed_providers(data["providers"], data["sample"], report)
        if refused:
            raise SeedError(f"{path} is not a valid catalog:\n" + "\n".join(refused))
        _seed_consent(data["consent"], report)
        _seed_disclaimers(data["disclaimers"], report)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return report


def _set(obj: Any, values: dict[str, Any]) -> bool:
    """Assign only the values that differ; return whether any did."""
    changed = False
    for name, value in values.items():
        if getattr(obj, name) != value:
            setattr(obj, name, value)
            changed = True
    return changed


def _seed_languages(codes: list[str], report: SeedReport) -> None:
    for position, code in enumerate(codes):
        language = db.session.get(Language, code)
        if language is None:
            db.session.add(Language(code=code, position=position))
            report.created.append(f"language {code}")
        elif _set(language, {"position": position}):
            report.updated.append(f"language {code}")


def _seed_named(
    model: type[Treatment] | type[Condition] | type[QuoteItem], rows: list[dict], report: SeedReport
) -> None:
    kind = model.__tablename__
    seen = set()
    for position, row in enumerate(rows):
        seen.add(row["slug"])
        values = {"names": row["names"], "active": True, "position": position}
        obj = db.session.get(model, row["slug"])
        if obj is None:
            db.session.add(model(slug=row["slug"], **values))
            report.created.append(f"{kind} {row['slug']}")
        elif _set(obj, values):
            report.updated.append(f"{kind} {row['slug']}")
    for obj in db.session.execute(db.select(model).where(model.active.is_(True))).scalars():
        if obj.slug not in seen:
            obj.active = False
            report.retired.append(f"{kind} {obj.slug}")


def _seed_destinations(rows: list[dict], report: SeedReport) -> None:
    seen = set()
    for position, row in enumerate(rows):
        seen.add(row["code"])
        conditions = [db.session.get_one(Condition, slug) for slug in row["conditions"]]
        destination = db.session.get(Destination, row["code"])
        if destination is None:
            destination = Destination(code=row["code"], names=row["names"], position=position)
            destination.conditions = conditions
            db.session.add(destination)
            report.created.append(f"destination {row['code']}")
            continue
        changed = _set(destination, {"names": row["names"], "active": True, "position": position})
        if {c.slug for c in destination.conditions} != set(row["conditions"]):
            destination.conditions = conditions
            changed = True
        if changed:
            report.updated.append(f"destination {row['code']}")
    active = db.select(Destination).where(Destination.active.is_(True))
    for destination in db.session.execute(active).scalars():
        if destination.code not in seen:
            destination.active = False
            report.retired.append(f"destination {destination.code}")


def _seed_providers(rows: list[dict], sample: bool, report: SeedReport) -> list[str]:
    """Create or update each provider by slug, as the admin API would (`providers.save`).

    Returns the catalog's refusals of the file's providers (a condition not
    offered at the provider's destination), each naming its provider.

    Providers missing from the file are left alone: admins manage them
    through the API too, and the file is not the only source of clinics.
    """
    problems: list[str] = []
    for row in rows:
        existing = providers.provider_by_slug(row["slug"])
        try:
            _, changed = providers.save(row, existing, sample=sample)
        except InvalidFields as error:
            problems += [f"provider {row['slug']}: {line}" for line in providers.error_lines(error)]
            continue
        if existing is None:
            report.created.append(f"provider {row['slug']}")
        elif changed:
            report.updated.append(f"provider {row['slug']}")
    return problems


def _seed_consent(texts: dict[str, str], report: SeedReport) -> None:
    for language, text in texts.items():
        newest = db.session.execute(
            db.select(ConsentText)
            .where(ConsentText.language == language)
            .order_by(ConsentText.version.desc())
            .limit(1)
        ).scalar_one_or_none()
        if newest is not None and newest.text == text.strip():
            continue
        version = newest.version + 1 if newest else 1
        db.session.add(ConsentText(language=language, version=version, text=text.strip()))
        report.created.append(f"consent {language} v{version}")


def _seed_disclaimers(rows: list[dict], report: SeedReport) -> None:
    in_file: set[tuple[str, str]] = set()
    for position, row in enumerate(rows):
        for language, text in row["texts"].items():
            in_file.add((row["key"], language))
            content = {
                "text": text.strip(),
                "required": row["required"],
                "destination_code": row["scope"].get("destination"),
                "condition_slug": row["scope"].get("condition"),
                "context": row["scope"].get("context"),
            }
            newest = _newest_disclaimer(row["key"], language)
            label = f"disclaimer {row['key']} {language}"
            if newest is not None and all(getattr(newest, k) == v for k, v in content.items()):
                if _set(newest, {"active": True, "position": position}):
                    report.updated.append(label)
                continue
            version = newest.version + 1 if newest else 1
            if newest is not None:
                newest.active = False
            db.session.add(
                Disclaimer(
                    key=row["key"],
                    language=language,
                    version=version,
                    position=position,
                    active=True,
                    **content,
                )
            )
            report.created.append(f"{label} v{version}")
    active = db.select(Disclaimer).where(Disclaimer.active.is_(True))
    for disclaimer in db.session.execute(active).scalars():
        if (disclaimer.key, disclaimer.language) not in in_file:
            disclaimer.active = False
            report.retired.append(f"disclaimer {disclaimer.key} {disclaimer.language}")


def _newest_disclaimer(key: str, language: str) -> Disclaimer | None:
    return db.session.execute(
        db.select(Disclaimer)
        .where(Disclaimer.key == key, Disclaimer.language == language)
        .order_by(Disclaimer.version.desc())
        .limit(1)
    ).scalar_one_or_none()
