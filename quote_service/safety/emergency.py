"""The emergency number of a patient's country, and the advice they are shown."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import yaml

from quote_service.safety.signs import ruleset

# Told to a patient whose country the table does not list: 112 reaches the
# emergency services from most mobile phones in most countries.
FALLBACK_NUMBER = "112"
DEFAULT_LANGUAGE = "en"


@dataclass(frozen=True)
class EmergencyNumber:
    number: str
    also: tuple[str, ...]
    known: bool


def table_path() -> Path:
    return Path(str(resources.files("quote_service") / "data" / "emergency_numbers.yaml"))


@lru_cache(maxsize=1)
def _table() -> dict[str, EmergencyNumber]:
    raw = yaml.safe_load(table_path().read_text(encoding="utf-8"))
    return {
        country.upper(): EmergencyNumber(
            str(entry["number"]), tuple(str(n) for n in entry.get("also", ())), True
        )
        for country, entry in raw["numbers"].items()
    }


def emergency_number(country: str | None) -> EmergencyNumber:
    """The number for `country` (ISO alpha-2, any case); 112 when the table has none."""
    found = _table().get((country or "").upper())
    return found or EmergencyNumber(FALLBACK_NUMBER, (), False)


def advice(language: str, country: str | None) -> tuple[str, str]:
    """(advice text in `language`, the number to call) for a patient in `country`."""
    texts = ruleset().advice
    text = texts.get(language) or texts[DEFAULT_LANGUAGE]
    number = emergency_number(country)
    if not number.known:
        return " ".join(text["unknown"].split()), number.number
    shown = number.number
    if number.also:
        shown += f" ({text['or']} " + f" {text['or']} ".join(number.also) + ")"
    return " ".join(text["known"].format(number=shown).split()), number.number
