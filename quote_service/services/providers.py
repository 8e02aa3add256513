"""Managing providers: the clinics requests are routed to.

Providers are never deleted: routing decisions point at them, so an admin's
"delete" deactivates. Every change is logged with the provider's slug and
the acting user's id, nothing else.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy.exc import IntegrityError

from quote_service.errors import Conflict, FieldErrors, InvalidFields, NotFound
from quote_service.extensions import db
from quote_service.models import (
    MAX_ID,
    Condition,
    Destination,
    Language,
    Provider,
    destination_condition,
    provider_condition,
    utcnow,
)
from quote_service.services import invitations
from quote_service.services.routing import loads_today

log = logging.getLogger(__name__)

# Fields copied as they are from a validated body onto the model.
PLAIN_FIELDS = ("name", "contact_email", "city", "daily_capacity", "weight", "active")


class SlugTaken(Conflict):
    """A provider with this slug exists already."""

    code = "slug_taken"


def list_providers(
    destination: str | None = None, condition: str | None = None, active: bool | None = None
) -> list[dict[str, Any]]:
    """Every provider matching the filters, in destination then slug order."""
    query = db.select(Provider).order_by(Provider.destination_code, Provider.slug)
    if destination is not None:
        query = query.where(Provider.destination_code == destination)
    if condition is not None:
        query = query.where(
            Provider.id.in_(
                db.select(provider_condition.c.provider_id).where(
                    provider_condition.c.condition_slug == condition
                )
            )
        )
    if active is not None:
        query = query.where(Provider.active.is_(active))
    return describe(list(db.session.execute(query).scalars()))


def names() -> list[tuple[int, str]]:
    """Every provider as (id, name), in list order: what a filter offers."""
    rows = db.session.execute(
        db.select(Provider.id, Provider.name).order_by(Provider.destination_code, Provider.slug)
    )
    return [(id_, name) for id_, name in rows]


def get_provider(provider_id: int) -> dict[str, Any]:
    return describe([find_provider(provider_id)])[0]


def find_provider(provider_id: int) -> Provider:
    # An id beyond the column's range would be a database error, not a 404.
    in_range = 0 < provider_id <= MAX_ID
    provider = db.session.get(Provider, provider_id) if in_range else None
    if provider is None:
        raise NotFound(f"No provider with the id {provider_id}.")
    return provider


def create_provider(data: dict[str, Any], actor_id: int) -> dict[str, Any]:
    """Check the body against the catalog, then store a new provider."""
    if _slug_taken(data["slug"]):
        raise SlugTaken(f"A provider with the slug {data['slug']} exists already.")
    conditions = check_catalog(data, data["destination"], data["conditions"])
    provider = new_provider(data, conditions)
    try:
        db.session.commit()
    except IntegrityError:
        # Another admin created the same slug between our check and commit.
        db.session.rollback()
        if _slug_taken(data["slug"]):
            raise SlugTaken(f"A provider with the slug {data['slug']} exists already.") from None
        raise
    log.info("provider %s created by user %s", provider.slug, actor_id)
    return describe([provider])[0]


def update_provider(provider_id: int, data: dict[str, Any], actor_id: int) -> dict[str, Any]:
    """Change the fields given; the result is checked as a whole against the catalog."""
    provider = find_provider(provider_id)
    destination = data.get("destination", provider.destination_code)
    slugs = data.get("conditions", [c.slug for c in provider.conditions])
    conditions = check_catalog(data, destination, slugs)
    changed = [
        name for name in PLAIN_FIELDS if name in data and getattr(provider, name) != data[name]
    ]
    for name in changed:
        setattr(provider, name, data[name])
    if destination != provider.destination_code:
        provider.destination_code = destination
        changed.append("destination")
    if "languages" in data and unique(data["languages"]) != provider.languages:
        provider.languages = unique(data["languages"])
        changed.append("languages")
    # Without either field the conditions stand as they are, even if the catalog moved on.
    checked = "conditions" in data or "destination" in data
    if checked and {c.slug for c in conditions} != {c.slug for c in provider.conditions}:
        provider.conditions = conditions
        changed.append("conditions")
    if changed:
        # Set explicitly: a change of conditions alone does not touch the row.
        provider.updated_at = utcnow()
        db.session.commit()
        log.info("provider %s updated by user %s: %s", provider.slug, actor_id, ", ".join(changed))
    return describe([provider])[0]


def deactivate_provider(provider_id: int, actor_id: int) -> dict[str, Any]:
    """Mark a provider inactive so it is never routed again; the row stays."""
    provider = find_provider(provider_id)
    if provider.active:
        provider.active = False
        provider.updated_at = utcnow()
        db.session.commit()
        log.info("provider %s deactivated by user %s", provider.slug, actor_id)
    return describe([provider])[0]


def new_provider(data: dict[str, Any], conditions: list[Condition]) -> Provider:
    """A provider from a checked body, added to the session; the caller commits."""
    now = utcnow()
    provider = Provider(
        slug=data["slug"],
        destination_code=data["destination"],
        languages=unique(data["languages"]),
        created_at=now,
        updated_at=now,
        **{name: data[name] for name in PLAIN_FIELDS},
    )
    provider.conditions = conditions
    db.session.add(provider)
    return provider


def describe(providers: Sequence[Provider]) -> list[dict[str, Any]]:
    """Providers as the API shows them, with today's routed count (one query for all)."""
    loads = loads_today([p.id for p in providers], utcnow())
    responses = invitations.response_stats([p.id for p in providers])
    return [
        {
            "id": p.id,
            "slug": p.slug,
            "name": p.name,
            "destination": p.destination_code,
            "conditions": [c.slug for c in p.conditions],
            "languages": p.languages,
            "contact_email": p.contact_email,
            "city": p.city,
            "daily_capacity": p.daily_capacity,
            "weight": p.weight,
            "active": p.active,
            "sample": p.sample,
            "created_at": p.created_at,
            "updated_at": p.updated_at,
            "routed_today": loads.get(p.id, 0),
            **responses[p.id],
        }
        for p in providers
    ]


def check_catalog(data: dict[str, Any], destination: str, slugs: list[str]) -> list[Condition]:
    """Check what only the database knows; raise one error naming every bad field.

    Returns the provider's conditions. When only the destination changes, the
    provider's current conditions must be offered at the new one too.
    """
    conditions, errors = catalog_errors(data, destination, slugs)
    if errors:
        raise InvalidFields(errors)
    return conditions


def catalog_errors(
    data: dict[str, Any], destination: str | None, slugs: list[str]
) -> tuple[list[Condition], FieldErrors]:
    """The provider's conditions, and the catalog's error for each field of `data`.

    `destination` is None when it is not known (a body that gave an invalid
    one): then only whether each condition exists at all is checked.
    """
    errors: FieldErrors = {}
    if "destination" in data and not _destination_active(destination):
        errors["destination"] = ["We do not offer this destination."]
    conditions, unknown, not_offered = _sort_conditions(destination, slugs)
    if destination is None or "destination" in errors:
        not_offered = []  # meaningless at a destination we do not offer
    if "conditions" in data and (unknown or not_offered):
        errors["conditions"] = unknown + not_offered
    elif "destination" in data and not_offered:
        errors["destination"] = [*not_offered, "Send the conditions it treats there too."]
    if "languages" in data:
        known = set(db.session.execute(db.select(Language.code)).scalars())
        strange = [code for code in unique(data["languages"]) if code not in known]
        if strange:
            errors["languages"] = [f"Unknown language: {code}." for code in strange]
    return conditions, errors


def creation_catalog_errors(valid: dict[str, Any], refused: Collection[str]) -> FieldErrors:
    """The catalog's errors in a new provider's body that failed its shape checks.

    `valid` holds the fields that passed them; a field in `refused` already has
    its error and is not checked again. So one 422 names every error at once.
    """
    checked = {name: value for name, value in valid.items() if name not in refused}
    return catalog_errors(checked, checked.get("destination"), checked.get("conditions", []))[1]


def update_catalog_errors(
    valid: dict[str, Any], refused: Collection[str], provider_id: int
) -> FieldErrors:
    """As `creation_catalog_errors`, for a change to a provider (checked as a whole)."""
    try:
        provider = find_provider(provider_id)
    except NotFound:
        return {}  # the body's own errors answer first, as without this check
    checked = {name: value for name, value in valid.items() if name not in refused}
    destination = (
        None if "destination" in refused else checked.get("destination", provider.destination_code)
    )
    if "conditions" in refused:
        slugs: list[str] = []  # a list sent but refused: the current ones say nothing
    else:
        slugs = checked.get("conditions", [c.slug for c in provider.conditions])
    return catalog_errors(checked, destination, slugs)[1]


def _destination_active(code: str | None) -> bool:
    destination = db.session.get(Destination, code) if code else None
    return destination is not None and destination.active


def _sort_conditions(
    destination: str | None, slugs: list[str]
) -> tuple[list[Condition], list[str], list[str]]:
    """The conditions offered at the destination, and messages for the unknown and the others."""
    offered = _offered_at(destination) if destination else set()
    conditions: list[Condition] = []
    unknown: list[str] = []
    not_offered: list[str] = []
    for slug in unique(slugs):
        condition = db.session.get(Condition, slug)
        if condition is None or not condition.active:
            unknown.append(f"Unknown condition: {slug}.")
        elif slug not in offered:
            not_offered.append(f"{slug} is not offered at {destination}.")
        else:
            conditions.append(condition)
    return conditions, unknown, not_offered


def _offered_at(destination: str) -> set[str]:
    rows = db.session.execute(
        db.select(destination_condition.c.condition_slug).where(
            destination_condition.c.destination_code == destination
        )
    )
    return set(rows.scalars())


def _slug_taken(slug: str) -> bool:
    return (
        db.session.execute(db.select(Provider.id).where(Provider.slug == slug)).first() is not None
    )


def unique(values: list[str]) -> list[str]:
    """The values without repeats, in their first order."""
    return list(dict.fromkeys(values))
