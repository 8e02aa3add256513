"""Reading the catalog: languages, offers, the current consent text and disclaimers."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app
from flask_babel import lazy_gettext as _l

from quote_service.errors import InvalidFields
from quote_service.extensions import db
from quote_service.i18n import DEFAULT_LANGUAGE
from quote_service.models import (
    Condition,
    Destination,
    QuoteItem,
    Treatment,
)
from quote_service.services import catalog_snapshot
from quote_service.services.catalog_snapshot import CurrentDisclaimer
from quote_service.services.countries import countries


def languages() -> list[str]:
    """Every language of the catalog, in its order."""
    return list(catalog_snapshot.current().languages)


def translated(names: dict[str, str], language: str) -> str:
    """A name in the language asked for, else English, else any."""
    return names.get(language) or names.get(DEFAULT_LANGUAGE) or next(iter(names.values()), "")


def organisation() -> dict[str, str]:
    """Who patients deal with, as every form and patient email shows it."""
    config = current_app.config
    return {
        "name": config["ORGANISATION_NAME"],
        "address": config["ORGANISATION_ADDRESS"],
        "contact_email": config["CONTACT_EMAIL"],
        "privacy_policy_url": config["PRIVACY_POLICY_URL"],
    }


def current_disclaimers(language: str) -> list[CurrentDisclaimer]:
    """The newest version of every active disclaimer in one language."""
    return list(catalog_snapshot.current().disclaimers.get(language, ()))


def disclaimers_in_scope(
    language: str, destination: str, condition: str, context: str | None = None
) -> list[CurrentDisclaimer]:
    """Every current disclaimer that applies to a message about a request.

    Global, destination and condition scopes as the request says; a disclaimer
    with a `context` ("quote") only in messages of that context.
    """
    return [
        d
        for d in current_disclaimers(language)
        if d.destination_code in (None, destination)
        and d.condition_slug in (None, condition)
        and d.context in (None, context)
    ]


def names(language: str) -> dict[str, list[tuple[str, str]]]:
    """Active destinations and conditions as (code, name) pairs: what a filter offers."""
    destinations = db.session.execute(
        db.select(Destination.code, Destination.names)
        .where(Destination.active.is_(True))
        .order_by(Destination.position, Destination.code)
    )
    conditions = db.session.execute(
        db.select(Condition.slug, Condition.names)
        .where(Condition.active.is_(True))
        .order_by(Condition.position, Condition.slug)
    )
    return {
        "destinations": [(code, translated(n, language)) for code, n in destinations],
        "conditions": [(slug, translated(n, language)) for slug, n in conditions],
    }


def quote_items() -> list[QuoteItem]:
    return list(
        db.session.execute(
            db.select(QuoteItem)
            .where(QuoteItem.active.is_(True))
            .order_by(QuoteItem.position, QuoteItem.slug)
        ).scalars()
    )


def quote_item_names(language: str) -> dict[str, str]:
    """Every quote item's name in `language`, retired ones included (old quotes name them)."""
    return {
        item.slug: translated(item.names, language)
        for item in db.session.execute(db.select(QuoteItem)).scalars()
    }


@dataclass(frozen=True)
class Named:
    """A condition, treatment or quote item, named in one language."""

    slug: str
    name: str


@dataclass(frozen=True)
class DestinationView:
    code: str
    name: str
    conditions: list[str]


@dataclass(frozen=True)
class Country:
    code: str
    name: str


@dataclass(frozen=True)
class CatalogView:
    """The public catalog in one language: what a form offers and must show."""

    destinations: list[DestinationView]
    conditions: list[Named]
    treatments: list[Named]
    quote_items: list[Named]
    languages: list[str]
    countries: list[Country]
    first_response_hours: int
    organisation: dict[str, str]
    consent: catalog_snapshot.Consent | None
    disclaimers: list[CurrentDisclaimer]


def catalog(language: str) -> CatalogView:
    """The public catalog with every text in `language`."""
    destinations = db.session.execute(
        db.select(Destination)
        .where(Destination.active.is_(True))
        .order_by(Destination.position, Destination.code)
    ).scalars()
    conditions = db.session.execute(
        db.select(Condition)
        .where(Condition.active.is_(True))
        .order_by(Condition.position, Condition.slug)
    ).scalars()
    treatments = db.session.execute(
        db.select(Treatment)
        .where(Treatment.active.is_(True))
        .order_by(Treatment.position, Treatment.slug)
    ).scalars()
    return CatalogView(
        destinations=[
            DestinationView(
                d.code, translated(d.names, language), [c.slug for c in d.conditions if c.active]
            )
            for d in destinations
        ],
        conditions=[Named(c.slug, translated(c.names, language)) for c in conditions],
        treatments=[Named(t.slug, translated(t.names, language)) for t in treatments],
        quote_items=[Named(item.slug, translated(item.names, language)) for item in quote_items()],
        languages=languages(),
        # For forms: countries of residence by name, and the usual wait for an answer.
        countries=[Country(code, name) for code, name in countries(language)],
        first_response_hours=current_app.config["SLA_FIRST_RESPONSE_HOURS"],
        organisation=organisation(),
        consent=catalog_snapshot.current().consent(language),
        disclaimers=current_disclaimers(language),
    )


def resolve_language(value: str) -> str:
    """A supported language for `fr`, `FR` or `fr-BE`; refuse any other."""
    primary = value.strip().replace("_", "-").split("-")[0].lower()
    supported = languages()
    if primary not in supported:
        choices = ", ".join(supported)
        raise InvalidFields({"lang": [_l("Choose one of: %(choices)s.", choices=choices)]})
    return primary
