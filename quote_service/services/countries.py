"""Countries by name, in the page's language (pycountry's list, Babel's names)."""

from __future__ import annotations

from functools import lru_cache

import pycountry
from babel import Locale

from quote_service.folding import fold


@lru_cache(maxsize=8)
def countries(language: str) -> tuple[tuple[str, str], ...]:
    """`(alpha-2 code, name)` of every ISO 3166-1 country, sorted by name in `language`."""
    names = Locale.parse(language).territories
    rows = [(c.alpha_2, names.get(c.alpha_2) or c.name) for c in pycountry.countries]
    # Accents do not move a country in the alphabet: Émirats sorts with E.
    return tuple(sorted(rows, key=lambda row: fold(row[1])))


def country_name(code: str, language: str) -> str:
    return dict(countries(language)).get(code.upper(), code)
