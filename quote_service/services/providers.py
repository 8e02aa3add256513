"""Managing providers: the clinics requests are routed to.

Providers are never deleted: routing decisions point at them, so an admin's
"delete" deactivates. Every change is logged with the provider's slug and
the acting user's id, nothing else.

`save` is the one way a provider is created or changed, whoever asks: the
admin API, the console, `flask providers import` and `flask seed`. It takes
what the input schema (`schemas.providers.ProviderCreateSchema`) made of a
body and checks it against the catalog, naming every error at once.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True)
class ProviderFigures:
    """A provider with what is counted about it: what the API and the console show."""

    provider: Provider
    routed_today: int
    response_rate: float | None
    median_response_hours: float | None


def find_providers(
    destination: str | None = None, condition: str | None = None, active: bool | None = None
) -> list[Provider]:
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
    return list(db.session.execute(query).scalars())


def list_providers(
    destination: str | None = None, condition: str | None = None, active: bool | None = None
) -> list[ProviderFigures]:
    """As `find_providers`, each with today's routed count and its answers to invitations."""
    return with_figures(find_providers(destination, condition, active))


def names() -> list[tuple[int, str]]:
    """Every provider as (id, name), in list order: what a filter offers."""
    rows = db.session.execute(
        db.select(Provider.id, Provider.name).order_by(Provider.destination_code, Provider.slug)
    )
    return [(id_, name) for id_, name in rows]


def get_provider(provider_id: int) -> ProviderFigures:
    return with_figures([find_provider(provider_id)])[0]


def find_provider(provider_id: int) -> Provider:
    # An id beyond the column's range would be a database error, not a 404.
    in_range = 0 < provider_id <= MAX_ID
    provider = db.session.get(Provider, provider_id) if in_range else None
    if provider is None:
        raise NotFound(f"No provider with the id {provider_id}.")
    return provider


def provider_by_slug(slug: str) -> Provider | None:
    return db.session.execute(db.select(Provider).where(Provider.slug == slug)).scalar_one_or_none()


def create_provider(data: dict[str, Any], actor_id: int) -> ProviderFigures:
    """Store a new provider from a body the input schema took."""
    if provider_by_slug(data["slug"]) is not None:
        raise SlugTaken(f"A provider with the slug {data['slug']} exists already.")
    provider, _ = save(data)
    try:
        db.session.commit()
    except IntegrityError:
        # Another admin created the same slug between our check and commit.
        db.session.rollback()
        if provider_by_slug(data["slug"]) is not None:
            raise SlugTaken(f"A provider with the slug {data['slug']} exists already.") from None
        raise
    log.info("provider %s created by user %s", provider.slug, actor_id)
    return with_figures([provider])[0]


def update_provider(provider_id: int, data: dict[str, Any], actor_id: int) -> ProviderFigures:
    """Change the fields given; the result is checked as a whole against the catalog."""
    provider, changed = save(data, find_provider(provider_id))
    if changed:
        db.session.commit()
        log.info("provider %s updated by user %s: %s", provider.slug, actor_id, ", ".join(changed))
    return with_figures([provider])[0]


def deactivate_provider(provider_id: int, actor_id: int) -> ProviderFigures:
    """Mark a provider inactive so it is never routed again; the row stays."""
    provider = find_provider(provider_id)
    if provider.active:
        provider.active = False
        provider.updated_at = utcnow()
        db.session.commit()
        log.info("provider %s deactivated by user %s", provider.slug, actor_id)
    return with_figures([provider])[0]


def save(
    data: Mapping[str, Any],
    provider: Provider | None = None,
    *,
    refused: FieldErrors | None = None,
    sample: bool | None = None,
) -> tuple[Provider, list[str]]:
    """Create a provider (`provider` None) or change one, from a body; the caller commits.

    `data` is what the input schema took of the body (every field for a new
    provider, those given for a change) and `refused` its errors of the other
    fields. The fields taken are checked against the catalog, a change as the
    whole provider it makes; if anything is wrong, one InvalidFields names the
    schema's errors and the catalog's, and nothing is changed. `sample` marks
    the demo catalog's clinics (the seed's, never a body's).

    Returns the provider and the names of the fields that changed.
    """
    conditions, errors = body_errors(data, refused or {}, provider)
    if errors:
        raise InvalidFields(errors)
    now = utcnow()
    if provider is None:
        provider = Provider(slug=data["slug"], created_at=now)
        db.session.add(provider)
    changed = [
        name for name in PLAIN_FIELDS if name in data and getattr(provider, name) != data[name]
    ]
    for name in changed:
        setattr(provider, name, data[name])
    if "destination" in data and data["destination"] != provider.destination_code:
        provider.destination_code = data["destination"]
        changed.append("destination")
    if "languages" in data and unique(data["languages"]) != provider.languages:
        provider.languages = unique(data["languages"])
        changed.append("languages")
    # Without either field the conditions stand as they are, even if the catalog moved on.
    checked = "conditions" in data or "destination" in data
    if checked and {c.slug for c in conditions} != {c.slug for c in provider.conditions}:
        provider.conditions = conditions
        changed.append("conditions")
    if sample is not None and provider.sample != sample:
        provider.sample = sample
        changed.append("sample")
    if changed:
        # Set explicitly: a change of conditions alone does not touch the row.
        provider.updated_at = now
    return provider, changed


def body_errors(
    data: Mapping[str, Any], refused: FieldErrors, provider: Provider | None = None
) -> tuple[list[Condition], FieldErrors]:
    """The provider's conditions, and every error of its body: the schema's, then the catalog's.

    A field in `refused` already has its error and is not judged by the
    catalog too. A change (`provider` given) is checked as the whole provider
    it makes: when only the destination changes, the provider's current
    conditions must be offered at the new one.
    """
    checked = {name: value for name, value in data.items() if name not in refused}
    if "destination" in refused:
        destination = None  # not known: only whether each condition exists is checked
    else:
        current = provider.destination_code if provider is not None else None
        destination = checked.get("destination", current)
    if "conditions" in refused:
        slugs: list[str] = []  # a list sent but refused: the current ones say nothing
    else:
        current_slugs = [c.slug for c in provider.conditions] if provider is not None else []
        slugs = checked.get("conditions", current_slugs)
    conditions, errors = _catalog_errors(checked, destination, slugs)
    return conditions, {**refused, **errors}


def refused_body_errors(
    data: Mapping[str, Any], refused: FieldErrors, provider_id: int | None = None
) -> FieldErrors:
    """`body_errors` of a body the schema refused in part, for a new provider or a change."""
    if provider_id is None:
        return body_errors(data, refused)[1]
    try:
        provider = find_provider(provider_id)
    except NotFound:
        return refused  # the body's own errors answer first, as without this check
    return body_errors(data, refused, provider)[1]


def error_lines(error: InvalidFields) -> list[str]:
    """A refusal as `field: message` lines, for a file's report (CSV import, seed)."""
    # str(): the schema's messages may be lazy (translated) strings.
    return [f"{name}: {' '.join(str(msg) for msg in msgs)}" for name, msgs in error.fields.items()]


def with_figures(providers: Sequence[Provider]) -> list[ProviderFigures]:
    """Providers with today's routed count and their answers (one query each for all)."""
    loads = loads_today([p.id for p in providers], utcnow())
    responses = invitations.response_stats([p.id for p in providers])
    return [
        ProviderFigures(
            provider=p,
            routed_today=loads.get(p.id, 0),
            response_rate=responses[p.id]["response_rate"],
            median_response_hours=responses[p.id]["median_response_hours"],
        )
        for p in providers
    ]


def _catalog_errors(
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


def unique(values: list[str]) -> list[str]:
    """The values without repeats, in their first order."""
    return list(dict.fromkeys(values))
