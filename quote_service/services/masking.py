"""Contact details masked out of free text before a clinic reads it.

The consent promises that a clinic never gets the patient's email or phone;
a patient may still type them into the message. Coordinators keep the
original: only texts built for clinics go through `for_clinic`.
"""

from __future__ import annotations

import re

import phonenumbers

EMAIL_MASK = "[email removed]"
PHONE_MASK = "[phone removed]"
# Loose on purpose: anything shaped like local@domain.tld goes, even if it
# would not pass a strict validator (a clinic should not get a near-miss).
EMAIL = re.compile(r"[^\s@<>()\[\],;:\"']+@[^\s@<>()\[\],;:\"']+\.[^\s@<>()\[\],;:\"'.]{2,}")


def _phone_spans(text: str, regions: list[str]) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    for region in [*regions, None]:
        # VALID leniency: a real number in any common format, not a date or an age.
        for match in phonenumbers.PhoneNumberMatcher(
            text, region, leniency=phonenumbers.Leniency.VALID
        ):
            spans.append((match.start, match.end))
    return spans


def mask_contacts(text: str | None, regions: list[str]) -> str | None:
    """The text with email addresses and phone numbers replaced by a marker."""
    if not text:
        return text
    text = EMAIL.sub(EMAIL_MASK, text)
    spans = sorted(set(_phone_spans(text, [r.upper() for r in regions if r])), reverse=True)
    last_start = len(text) + 1
    for start, end in spans:
        if end > last_start:
            continue  # overlaps a span already masked
        text = text[:start] + PHONE_MASK + text[end:]
        last_start = start
    return text


def for_clinic(text: str | None, country: str | None, destination: str | None) -> str | None:
    """Mask a request's free text, reading numbers in the patient's and clinic's regions."""
    return mask_contacts(text, [c for c in (country, destination) if c])
