"""The catalog the intake checks requests against and the emails name, read once per process.

Destinations, conditions, treatments, which conditions each destination
offers, the languages, the newest consent text per language and the current
disclaimers change only when someone writes to their tables (`flask seed`, a
migration, psql). The database keeps one number that triggers bump with every
such write (migrations 0025 and 0028); a request reads that number only, and
the tables again when it moved. Six SELECTs per request become one, and no
write can leave a process checking against an old catalog. A routing reads
the number once for all its emails (`held`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from flask import current_app

from quote_service.extensions import db
from quote_service.i18n import DEFAULT_LANGUAGE
from quote_service.models import (
    Condition,
    ConsentText,
    Destination,
    Disclaimer,
    Language,
    Treatment,
    catalog_version,
    destination_condition,
)


@dataclass(frozen=True)
class Consent:
    """A consent text: what a form shows, and the version and language a request records."""

    version: int
    language: str
    text: str


@dataclass(frozen=True)
class CurrentDisclaimer:
    """The newest version of an active disclaimer in one language, and where it applies."""

    key: str
    version: int
    language: str
    destination_code: str | None
    condition_slug: str | None
    required: bool
    context: str | None
    text: str


@dataclass(frozen=True)
class Snapshot:
    version: int
    #: Active destinations, by code: their names in every language.
    destinations: dict[str, dict[str, str]]
    active_conditions: frozenset[str]
    active_treatments: frozenset[str]
    #: (destination code, condition slug) of every offer.
    offers: frozenset[tuple[str, str]]
    #: Every language, in the catalog's order.
    languages: tuple[str, ...]
    #: The newest consent text of each language that has one.
    consents: dict[str, Consent]
    #: The names in every language of every condition, destination and
    #: treatment, active or not: what the emails about a request call them.
    condition_names: dict[str, dict[str, str]]
    destination_names: dict[str, dict[str, str]]
    treatment_names: dict[str, dict[str, str]]
    #: Per language, the newest version of each active disclaimer, in the catalog's order.
    disclaimers: dict[str, tuple[CurrentDisclaimer, ...]]

    def consent(self, language: str) -> Consent | None:
        """The newest consent text in that language, else the newest English one."""
        return self.consents.get(language) or self.consents.get(DEFAULT_LANGUAGE)


# Where `held` keeps a transaction's snapshot, in the session's info.
_HELD = "catalog_snapshot"


def current() -> Snapshot:
    """This process's snapshot, read again first if the catalog changed since."""
    held: Snapshot | None = db.session.info.get(_HELD)
    if held is not None:
        return held
    version = db.session.execute(db.select(catalog_version.c.version)).scalar_one()
    # Per app: tests and tools build several apps, each on a database of its own.
    kept: Snapshot | None = current_app.extensions.get("catalog_snapshot")
    if kept is None or kept.version != version:
        kept = _read(version)
        current_app.extensions["catalog_snapshot"] = kept
    return kept


@contextmanager
def held() -> Iterator[Snapshot]:
    """One snapshot for a unit of work that asks for it many times (a routing and its emails).

    The version is read once, on entering: a catalog change committed
    meanwhile reaches the next unit of work, as it would had the change come
    a moment later.
    """
    snapshot = current()
    db.session.info[_HELD] = snapshot
    try:
        yield snapshot
    finally:
        db.session.info.pop(_HELD, None)


def _read(version: int) -> Snapshot:
    session = db.session
    consents: dict[str, Consent] = {}
    for number, language, text in session.execute(
        db.select(ConsentText.version, ConsentText.language, ConsentText.text).order_by(
            ConsentText.version.desc()
        )
    ):
        consents.setdefault(language, Consent(number, language, text))
    destinations = session.execute(
        db.select(Destination.code, Destination.names, Destination.active)
    ).all()
    conditions = session.execute(db.select(Condition.slug, Condition.names, Condition.active)).all()
    treatments = session.execute(db.select(Treatment.slug, Treatment.names, Treatment.active)).all()
    return Snapshot(
        version=version,
        destinations={code: names for code, names, active in destinations if active},
        active_conditions=frozenset(slug for slug, _, active in conditions if active),
        active_treatments=frozenset(slug for slug, _, active in treatments if active),
        offers=frozenset(
            (code, slug)
            for code, slug in session.execute(
                db.select(
                    destination_condition.c.destination_code, destination_condition.c.condition_slug
                )
            )
        ),
        languages=tuple(
            session.execute(
                db.select(Language.code).order_by(Language.position, Language.code)
            ).scalars()
        ),
        consents=consents,
        condition_names={slug: names for slug, names, _ in conditions},
        destination_names={code: names for code, names, _ in destinations},
        treatment_names={slug: names for slug, names, _ in treatments},
        disclaimers=_current_disclaimers(),
    )


def _current_disclaimers() -> dict[str, tuple[CurrentDisclaimer, ...]]:
    newest: dict[str, dict[str, CurrentDisclaimer]] = {}
    rows = db.session.execute(
        db.select(Disclaimer)
        .where(Disclaimer.active.is_(True))
        .order_by(Disclaimer.position, Disclaimer.key, Disclaimer.version.desc())
    ).scalars()
    for d in rows:
        newest.setdefault(d.language, {}).setdefault(
            d.key,
            CurrentDisclaimer(
                d.key,
                d.version,
                d.language,
                d.destination_code,
                d.condition_slug,
                d.required,
                d.context,
                d.text,
            ),
        )
    return {language: tuple(by_key.values()) for language, by_key in newest.items()}
