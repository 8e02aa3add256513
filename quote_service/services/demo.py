"""The demo users of `make run`, whose tokens survive restarts.

Only a hash of each token is in the database, so the tokens themselves are
kept in `instance/demo-tokens.json` (readable by its owner alone). At each
start a kept token that still opens its user's account is printed again;
a missing, revoked or foreign one is replaced. `make clean` forgets them.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from quote_service.extensions import db
from quote_service.models import User
from quote_service.services.users import TOKEN_PREFIX, authenticate, create_user, hash_token

DEMO_USERS = (
    ("coordinator", "demo.coordinator@quote-service.example"),
    ("admin", "demo.admin@quote-service.example"),
)
TOKENS_FILE = "demo-tokens.json"


@dataclass(frozen=True)
class DemoToken:
    role: str
    email: str
    token: str


def demo_tokens(instance_path: str | Path) -> list[DemoToken]:
    """A working token for each demo user: the kept one when it still works, else a new one."""
    path = Path(instance_path) / TOKENS_FILE
    kept = _read(path)
    tokens = []
    for role, email in DEMO_USERS:
        token = kept.get(email, "")
        user = authenticate(token) if token else None
        if user is None or user.email != email or user.role != role:
            token = _new_token(email, role)
        tokens.append(DemoToken(role, email, token))
    _write(path, {t.email: t.token for t in tokens})
    return tokens


def _new_token(email: str, role: str) -> str:
    user = db.session.execute(db.select(User).where(User.email == email)).scalar_one_or_none()
    if user is None:
        return create_user(email, role)[1]
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    user.token_sha256 = hash_token(token)
    user.role = role
    user.revoked_at = None
    db.session.commit()
    return token


def _read(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _write(path: Path, tokens: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        json.dump(tokens, file, indent=2)
    os.replace(temporary, path)
