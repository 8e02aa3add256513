"""Text folded for matching: accents and case do not count (Müller, MULLER and muller are one)."""

from __future__ import annotations

import unicodedata


def fold(text: str) -> str:
    """`text` without its accents, case-folded: the form names are matched and sorted in."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
