"""What the success page shows, carried in its address without exposing it.

After a form post the browser is sent (303) to `/form/<lang>/sent?receipt=...`,
so a reload does not post again. The receipt holds the reference, the address
the email goes to and the urgent advice; it is encrypted and authenticated
with the data keys (Fernet), so neither a log line nor another person can read
it from the address, and it expires.
"""

from __future__ import annotations

import json
from typing import Any

from cryptography.fernet import InvalidToken

from quote_service.crypto import keyring

RECEIPT_SECONDS = 24 * 3600
FIELDS = ("reference", "email", "urgent", "advice", "emergency_number")


def seal(answer: dict[str, Any], email: str) -> str:
    content = {name: answer.get(name) for name in FIELDS if name != "email"}
    content["email"] = email
    return keyring().multi.encrypt(json.dumps(content).encode()).decode("ascii")


def unseal(token: str) -> dict[str, Any] | None:
    """The receipt's content, or None when it is altered, foreign or expired."""
    try:
        raw = keyring().multi.decrypt(token.encode("ascii"), ttl=RECEIPT_SECONDS)
        content = json.loads(raw)
    except (InvalidToken, ValueError, UnicodeError):
        return None
    return content if isinstance(content, dict) and content.get("reference") else None
