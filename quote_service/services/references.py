"""Public references for quote requests: short, readable, unguessable."""

from __future__ import annotations

import re
import secrets

# Crockford-style alphabet without 0/O, 1/I/L and U: nothing to misread on a
# phone call. 30**8 is about 6.6e11 references.
ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
LENGTH = 8
PREFIX = "QR-"
PATTERN = re.compile(rf"^{PREFIX}[{ALPHABET}]{{{LENGTH}}}$")


def new_reference() -> str:
    return PREFIX + "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


def is_reference(value: str) -> bool:
    return bool(PATTERN.match(value))
