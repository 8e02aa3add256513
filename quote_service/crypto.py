"""Encryption at rest (Fernet) and keyed hashes for exact lookups.

Keys come from DATA_ENCRYPTION_KEYS, newest first: the newest encrypts, all
decrypt (MultiFernet), so a new key can be rolled out before `flask keys
rotate` re-encrypts the old rows. Lookups (email, phone) go through an HMAC
keyed by a key derived from each Fernet key: new rows are hashed with the
newest, and a lookup tries every configured key, so searching keeps working
while a rotation is under way.

With no DATA_ENCRYPTION_KEYS (the `make run` default) a key is generated once
into instance/data-encryption.key and a warning is logged; deployments set the
variable.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import re
import secrets
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import Flask, current_app

log = logging.getLogger(__name__)

KEY_FILE = "data-encryption.key"
# A link's token is 43 url-safe base64 characters (256 bits); anything else is not looked up.
LINK_TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{43}")


class Keyring:
    """The configured keys: encrypt, decrypt, rotate and hash."""

    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ValueError("at least one data encryption key is needed")
        self.fernets = [Fernet(key.encode()) for key in keys]
        self.multi = MultiFernet(self.fernets)
        # HMAC keys derived from each Fernet key, newest first.
        self.hash_keys = [
            hashlib.sha256(b"quote-service lookup hash\x00" + key.encode()).digest() for key in keys
        ]

    def encrypt(self, plaintext: str) -> str:
        return self.multi.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        return self.multi.decrypt(token.encode("ascii")).decode("utf-8")

    def rotate(self, token: str) -> str:
        """The same plaintext, encrypted with the newest key."""
        return self.multi.rotate(token.encode("ascii")).decode("ascii")

    def is_current(self, token: str) -> bool:
        """Whether the newest key alone decrypts the token."""
        try:
            self.fernets[0].decrypt(token.encode("ascii"))
            return True
        except InvalidToken:
            return False

    def lookup_hash(self, value: str) -> str:
        """The keyed hash new rows store, with the newest key."""
        return self.lookup_hashes(value)[0]

    def lookup_hashes(self, value: str) -> list[str]:
        """The value's hash under every configured key, for lookups during a rotation."""
        normalised = value.strip().lower().encode("utf-8")
        return [hmac.new(key, normalised, hashlib.sha256).hexdigest() for key in self.hash_keys]

    def link_tokens(self, purpose: str, salt: str) -> list[str]:
        """The secret token of a link (an invitation's...) under every key, newest first.

        A token is HMAC(key, purpose, salt), 256 bits: the database keeps the
        salt and the token's SHA-256 only, so a dump opens no link, while the
        service can put the same link into a later email (a reminder).
        """
        message = purpose.encode("ascii") + b"\x00" + salt.encode("ascii")
        return [
            base64.urlsafe_b64encode(hmac.new(key, message, hashlib.sha256).digest())
            .decode("ascii")
            .rstrip("=")
            for key in self.hash_keys
        ]


def token_hash(token: str) -> str:
    """What is stored of a link's token: its SHA-256, looked up by a unique index."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def new_link_token(purpose: str) -> tuple[str, str]:
    """A fresh link for `purpose`: the salt and the token's hash to store (never the token)."""
    salt = secrets.token_urlsafe(16)
    return salt, token_hash(keyring().link_tokens(purpose, salt)[0])


def stored_link_token(purpose: str, salt: str, stored_hash: str) -> str:
    """The token of a stored link, re-derived from its salt under the configured keys.

    LookupError only after the key it was made with has been retired from
    DATA_ENCRYPTION_KEYS.
    """
    for token in keyring().link_tokens(purpose, salt):
        if token_hash(token) == stored_hash:
            return token
    raise LookupError(f"{purpose}: the key of this link is no longer configured")


def keys_for(app: Flask) -> list[str]:
    """The configured keys, or the instance folder's generated development key."""
    if app.config["DATA_ENCRYPTION_KEYS"]:
        return list(app.config["DATA_ENCRYPTION_KEYS"])
    path = Path(app.instance_path) / KEY_FILE
    if not path.exists():
        key = Fernet.generate_key()
        try:
            # O_EXCL: two processes starting at once agree on one key.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(key)
        except FileExistsError:
            pass
    log.warning("DATA_ENCRYPTION_KEYS is not set: using the development key in %s", path)
    return [path.read_text().strip()]


def init_app(app: Flask) -> None:
    app.extensions["keyring"] = Keyring(keys_for(app))


def keyring() -> Keyring:
    return current_app.extensions["keyring"]
