"""The hosted quote form: what its page shows, built from the same services as the API."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from babel import Locale
from babel.numbers import format_decimal
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from quote_service.i18n import LANGUAGES
from quote_service.schemas.localised import EXAMPLE_AMOUNT, example_date
from quote_service.services import catalog as catalog_service

# The fields in the order of the page: the error summary lists them so.
FIELD_ORDER = (
    "full_name",
    "email",
    "phone",
    "country_of_residence",
    "preferred_language",
    "patient_age",
    "destination",
    "condition",
    "treatment",
    "travel_from",
    "travel_to",
    "budget_eur",
    "message",
    "consent_privacy",
    "consent_marketing",
)
# Shown in the error summary when a message belongs to no field of the page.
GENERAL = "form"
# The summary names each field, so "This field is required." says which one.
LABELS = {
    "full_name": _l("Full name"),
    "email": _l("Email address"),
    "phone": _l("Phone number"),
    "country_of_residence": _l("Country you live in"),
    "preferred_language": _l("Language we should write to you in"),
    "patient_age": _l("Age of the patient"),
    "destination": _l("Where you would like to be treated"),
    "condition": _l("Condition"),
    "treatment": _l("Treatment"),
    "travel_from": _l("Could travel from"),
    "travel_to": _l("Until"),
    "budget_eur": _l("Budget in euros"),
    "message": _l("Your medical history and questions"),
    "consent_privacy": _l("Your consent"),
    "consent_marketing": _l("Your consent"),
}


@dataclass
class FormPage:
    language: str
    values: Mapping[str, str] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)
    notice: str | None = None

    @property
    def locale(self) -> Locale:
        return Locale.parse(self.language)

    def summary(self) -> list[tuple[str, str]]:
        """(field, "Label: message") for the error summary, in the order of the page."""
        ordered = [name for name in FIELD_ORDER if name in self.errors]
        ordered += [name for name in self.errors if name not in FIELD_ORDER]
        return [
            (name, _("%(field)s: %(message)s", field=LABELS[name], message=message))
            if name in LABELS
            else (name, message)
            for name in ordered
            for message in self.errors[name]
        ]

    def context(self) -> dict[str, Any]:
        catalog = catalog_service.catalog(self.language)
        destinations = {d.code: d.name for d in catalog.destinations}
        conditions = {c.slug: c.name for c in catalog.conditions}
        return {
            "page": self,
            "catalog": catalog,
            "offers": [
                (d.name, [conditions[slug] for slug in d.conditions if slug in conditions])
                for d in catalog.destinations
            ],
            "scope_names": {**destinations, **conditions},
            "options": {
                "countries": [(c.code, c.name, {}) for c in catalog.countries],
                "languages": [(code, language_name(code), {}) for code in LANGUAGES],
                "destinations": [
                    (d.code, d.name, {"conditions": " ".join(d.conditions)})
                    for d in catalog.destinations
                ],
                "conditions": [(c.slug, c.name, {}) for c in catalog.conditions],
                "treatments": [(t.slug, t.name, {}) for t in catalog.treatments],
            },
            "budget_example": format_decimal(EXAMPLE_AMOUNT, locale=self.locale),
            "date_example": example_date(self.locale),
            "field_ids": {name: name for name in FIELD_ORDER},
        }


def language_name(code: str) -> str:
    """A language's name in itself, as a language menu shows it (Français, Nederlands)."""
    name = Locale.parse(code).get_display_name(code) or code
    return name[:1].upper() + name[1:]
