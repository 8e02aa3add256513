"""Quote requests generated in bulk (COPY), encrypted columns included.

Encryption is the slow part of writing a request, so each distinct value is
encrypted once with the run's Keyring and its ciphertext reused; the rows
still decrypt, so the API reads them as it reads real ones. Addresses that
must reach the SMTP sink (the pipeline's) are encrypted one by one.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg

from quote_service.crypto import Keyring
from quote_service.services.references import ALPHABET, LENGTH, PREFIX

# Statuses of a queue that has been worked for a while, and their shares.
STATUS_MIX = (
    ("received", 2),
    ("routed", 3),
    ("unroutable", 1),
    ("in_review", 10),
    ("quoted", 15),
    ("closed", 50),
    ("rejected", 8),
    ("withdrawn", 6),
    ("spam", 5),
)
NOT_ROUTED = {"received", "unroutable", "spam"}
WORKED = {"in_review", "quoted"}
LANGUAGES = ("en", "fr", "nl", "de")
TREATMENTS = ("msc", "ipsc", "nsc", "unsure")
CIPHERTEXT_POOL = 32
MESSAGE = "Stroke two years ago, left side weakness; asking about MSC trials and travel."
TOPIC_RECEIVED = "quote_request.received"

REQUEST_COLUMNS = (
    "id",
    "reference",
    "status",
    "full_name",
    "email",
    "email_hash",
    "phone",
    "phone_hash",
    "country_of_residence",
    "preferred_language",
    "condition_slug",
    "destination_code",
    "treatment_slug",
    "patient_age",
    "travel_from",
    "travel_to",
    "budget_eur",
    "message",
    "consent_privacy",
    "consent_marketing",
    "consent_version",
    "consent_language",
    "consented_at",
    "provider_id",
    "assignee_id",
    "version",
    "created_at",
    "updated_at",
)


def reference_for(number: int) -> str:
    """A distinct, valid reference for each number (base 30 in the references' alphabet)."""
    digits = []
    for _ in range(LENGTH):
        number, digit = divmod(number, len(ALPHABET))
        digits.append(ALPHABET[digit])
    return PREFIX + "".join(reversed(digits))


@dataclass(frozen=True)
class Catalog:
    """What generated rows must agree with: offers, providers, consent."""

    offers: dict[str, list[str]]  # destination -> conditions offered there
    providers: dict[str, list[int]]  # destination -> provider ids
    consent_version: int
    consent_language: str

    @classmethod
    def load(cls, conn: psycopg.Connection) -> Catalog:
        offers: dict[str, list[str]] = {}
        for destination, condition in conn.execute(
            "SELECT destination_code, condition_slug FROM destination_condition ORDER BY 1, 2"
        ):
            offers.setdefault(destination, []).append(condition)
        providers: dict[str, list[int]] = {}
        for destination, provider_id in conn.execute(
            "SELECT destination_code, id FROM provider WHERE active ORDER BY id"
        ):
            providers.setdefault(destination, []).append(provider_id)
        consent = conn.execute(
            "SELECT version, language FROM consent_text WHERE language = 'en'"
            " ORDER BY version DESC LIMIT 1"
        ).fetchone()
        if consent is None or not offers:
            raise RuntimeError("the bench database has no catalog: seed it first")
        return cls(offers, providers, consent[0], consent[1])


class RequestFactory:
    def __init__(self, keyring: Keyring, catalog: Catalog, seed: int = 7) -> None:
        self.keyring = keyring
        self.catalog = catalog
        self.random = random.Random(seed)
        self.emails = [keyring.encrypt(f"patient{i}@example.org") for i in range(CIPHERTEXT_POOL)]
        self.phones = [keyring.encrypt(f"+3247012{i:04d}") for i in range(CIPHERTEXT_POOL)]
        self.messages = [keyring.encrypt(f"{MESSAGE} #{i}") for i in range(CIPHERTEXT_POOL)]
        self.phone_hash = keyring.lookup_hash("+32470120000")
        self.statuses = [status for status, share in STATUS_MIX for _ in range(share)]
        self.destinations = sorted(catalog.offers)

    def row(
        self,
        row_id: int,
        created_at: datetime,
        status: str,
        assignee_id: int | None,
        email: str | None = None,
    ) -> tuple[Any, ...]:
        """One quote_request row, in `REQUEST_COLUMNS` order."""
        pick = self.random.randrange
        destination = self.destinations[pick(len(self.destinations))]
        conditions = self.catalog.offers[destination]
        providers = self.catalog.providers.get(destination) or [None]
        provider = None if status in NOT_ROUTED else providers[pick(len(providers))]
        start = date.today() + timedelta(days=30 + pick(300))
        if email is None:
            email_ciphertext = self.emails[row_id % CIPHERTEXT_POOL]
            # Distinct hashes keep the email index as selective as a real one.
            email_hash = self.keyring.lookup_hash(f"patient{row_id}@example.org")
        else:
            email_ciphertext, email_hash = (
                self.keyring.encrypt(email),
                self.keyring.lookup_hash(email),
            )
        return (
            row_id,
            reference_for(row_id),
            status,
            f"Patient {row_id}",
            email_ciphertext,
            email_hash,
            self.phones[row_id % CIPHERTEXT_POOL],
            self.phone_hash,
            "BE",
            LANGUAGES[pick(len(LANGUAGES))],
            conditions[pick(len(conditions))],
            destination,
            TREATMENTS[pick(len(TREATMENTS))],
            30 + pick(60),
            start,
            start + timedelta(days=14),
            20_000 + pick(30_000),
            self.messages[row_id % CIPHERTEXT_POOL],
            True,
            False,
            self.catalog.consent_version,
            self.catalog.consent_language,
            created_at,
            provider,
            assignee_id if status in WORKED and pick(2) else None,
            1 if status == "received" else 2 + pick(3),
            created_at,
            created_at,
        )

    def random_status(self) -> str:
        return self.statuses[self.random.randrange(len(self.statuses))]


def allocate_ids(conn: psycopg.Connection, table: str, count: int) -> list[int]:
    """`count` ids from the table's own sequence, so later ordinary inserts never collide."""
    rows = conn.execute(
        "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
        (table, count),
    ).fetchall()
    return [row[0] for row in rows]


def _copy(conn: psycopg.Connection, table: str, columns: tuple[str, ...], rows: Iterator) -> None:
    with conn.cursor().copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def load_queue(
    conn: psycopg.Connection,
    factory: RequestFactory,
    count: int,
    newest: datetime,
    spacing: timedelta,
    assignee_id: int,
) -> None:
    """Add `count` worked requests, the newest at `newest`, one every `spacing` going back."""
    ids = allocate_ids(conn, "quote_request", count)
    rows = (
        factory.row(row_id, newest - spacing * position, factory.random_status(), assignee_id)
        for position, row_id in enumerate(ids)
    )
    _copy(conn, "quote_request", REQUEST_COLUMNS, rows)
    conn.commit()


def store_received(
    conn: psycopg.Connection, factory: RequestFactory, emails: list[str]
) -> list[int]:
    """Requests as the intake leaves them: `received`, with their event and outbox row.

    The caller commits: the workers see the whole batch at once.
    """
    now = datetime.now(UTC)
    ids = allocate_ids(conn, "quote_request", len(emails))
    _copy(
        conn,
        "quote_request",
        REQUEST_COLUMNS,
        (
            factory.row(row_id, now, "received", None, email)
            for row_id, email in zip(ids, emails, strict=True)
        ),
    )
    _copy(
        conn,
        "event",
        ("quote_request_id", "type", "actor", "at"),
        ((row_id, "received", "patient", now) for row_id in ids),
    )
    _copy(
        conn,
        "outbox_message",
        ("topic", "payload", "created_at", "available_at", "publish_count"),
        ((TOPIC_RECEIVED, json.dumps({"quote_request_id": row_id}), now, now, 0) for row_id in ids),
    )
    return ids
