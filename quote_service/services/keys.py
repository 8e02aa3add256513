"""Re-encrypting stored data with the newest key (`flask keys rotate`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from sqlalchemy import MetaData, text

from quote_service.addresses import domain_of, mailbox
from quote_service.crypto import keyring
from quote_service.extensions import db
from quote_service.models import Base, EncryptedText


@dataclass(frozen=True)
class EncryptedColumns:
    table: str
    columns: tuple[str, ...]
    # column -> its lookup-hash columns, recomputed with the newest key.
    hashes: tuple[tuple[str, str], ...] = ()


# Lookup-hash columns beside an encrypted `<name>`: `<name>_hash` of the value,
# `<name>_mailbox_hash` of the inbox of an address (without its +tag),
# `<name>_domain_hash` of its domain (a search for "@example.org").
HASH_SUFFIXES = ("_hash", "_mailbox_hash", "_domain_hash")


def hashed_part(hash_column: str, plain: str) -> str:
    """What of a plain value its hash column holds the hash of."""
    if hash_column.endswith("_mailbox_hash"):
        return mailbox(plain)
    if hash_column.endswith("_domain_hash"):
        return domain_of(plain)
    return plain


def encrypted_columns(metadata: MetaData = Base.metadata) -> tuple[EncryptedColumns, ...]:
    """Every column of the encrypted type, table by table, read from the models.

    Derived, never listed: a new encrypted column is rotated without anyone
    remembering to name it here. A lookup hash is the column `<name>_hash`
    beside an encrypted `<name>` (see `EncryptedText`), or `<name>_mailbox_hash`
    for the address without its +tag, recomputed with it.
    """
    found = []
    for table in metadata.sorted_tables:
        columns = tuple(c.name for c in table.columns if isinstance(c.type, EncryptedText))
        if columns:
            hashes = tuple(
                (name, f"{name}{suffix}")
                for name in columns
                for suffix in HASH_SUFFIXES
                if f"{name}{suffix}" in table.columns
            )
            found.append(EncryptedColumns(table.name, columns, hashes))
    return tuple(found)


def total_rows(metadata: MetaData = Base.metadata) -> int:
    return sum(
        db.session.execute(text(f"SELECT count(*) FROM {spec.table}")).scalar()
        for spec in encrypted_columns(metadata)
    )


def rotate(
    batch_size: int = 500,
    progress: Callable[[int], None] | None = None,
    metadata: MetaData = Base.metadata,
) -> int:
    """Re-encrypt every encrypted value with the newest key; return rows rewritten.

    Works in batches of `batch_size` rows, each committed on its own: an
    interrupted run leaves every row readable (old and new keys both decrypt)
    and a rerun simply finishes the job.
    """
    rewritten = 0
    for spec in encrypted_columns(metadata):
        for batch in _batches(spec, batch_size):
            for row in batch:
                rewritten += _rotate_row(spec, row)
            db.session.commit()
            if progress:
                progress(len(batch))
    return rewritten


def _batches(spec: EncryptedColumns, batch_size: int) -> Iterator[list]:
    last_id = 0
    columns = ", ".join(spec.columns)
    while True:
        batch = db.session.execute(
            text(f"SELECT id, {columns} FROM {spec.table} WHERE id > :last ORDER BY id LIMIT :n"),
            {"last": last_id, "n": batch_size},
        ).all()
        if not batch:
            return
        yield batch
        last_id = batch[-1][0]


def _rotate_row(spec: EncryptedColumns, row) -> int:  # noqa: ANN001 - a result row
    keys = keyring()
    row_id, values = row[0], dict(zip(spec.columns, row[1:], strict=True))
    updates: dict[str, str | None] = {}
    for column, token in values.items():
        if token is not None and not keys.is_current(token):
            updates[column] = keys.rotate(token)
    for column, hash_column in spec.hashes:
        token = values[column]
        plain = keys.decrypt(token) if token is not None else None
        updates[hash_column] = keys.lookup_hash(hashed_part(hash_column, plain)) if plain else None
    if not any(column in updates for column in spec.columns):
        # Already on the newest key; hashes are rewritten only with the values.
        return 0
    assignments = ", ".join(f"{name} = :{name}" for name in updates)
    db.session.execute(
        text(f"UPDATE {spec.table} SET {assignments} WHERE id = :id"), {**updates, "id": row_id}
    )
    return 1
