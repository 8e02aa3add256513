"""`flask keys rotate` finds the encrypted columns in the models: nobody lists them by hand."""

from __future__ import annotations

from cryptography.fernet import Fernet
from sqlalchemy import Column, Integer, MetaData, String, Table, select, type_coerce

from quote_service.crypto import Keyring
from quote_service.extensions import db
from quote_service.models import Base, EncryptedText
from quote_service.services import keys
from tests.conftest import base_config


def test_every_encrypted_column_of_every_mapped_model_is_rotated():
    mapped = {
        (column.table.name, column.name)
        for mapper in Base.registry.mappers
        for column in mapper.columns
        if isinstance(column.type, EncryptedText)
    }
    rotated = {(spec.table, column) for spec in keys.encrypted_columns() for column in spec.columns}
    assert mapped and rotated == mapped
    hashes = {(spec.table, pair) for spec in keys.encrypted_columns() for pair in spec.hashes}
    assert ("quote_request", ("email", "email_hash")) in hashes
    assert ("notification", ("recipient", "recipient_hash")) in hashes
    assert ("quote_request", ("email", "email_mailbox_hash")) in hashes
    assert ("notification", ("recipient", "recipient_mailbox_hash")) in hashes
    assert ("quote_request", ("email", "email_domain_hash")) in hashes


def test_a_new_encrypted_column_is_rotated_with_its_hash_without_being_named(
    postgres, app, make_app
):
    """A table added after keys.py was written: the rotation finds it from its types alone."""
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    metadata = MetaData()
    probe = Table(
        "rotation_probe",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("secret", EncryptedText),
        Column("secret_hash", String(64)),
        Column("plain", String(40)),
    )
    old_app = make_app(base_config(postgres.url, DATA_ENCRYPTION_KEYS=[old_key]))
    new_app = make_app(base_config(postgres.url, DATA_ENCRYPTION_KEYS=[new_key, old_key]))
    with old_app.app_context():
        metadata.create_all(db.engine)
    try:
        with old_app.app_context():
            old = Keyring([old_key])
            db.session.execute(
                probe.insert(),
                [
                    {"secret": f"s{n}", "secret_hash": old.lookup_hash(f"s{n}"), "plain": f"p{n}"}
                    for n in range(5)
                ]
                + [{"secret": None, "secret_hash": None, "plain": "none"}],
            )
            db.session.commit()

        with new_app.app_context():
            [spec] = keys.encrypted_columns(metadata)
            assert (spec.table, spec.columns, spec.hashes) == (
                "rotation_probe",
                ("secret",),
                (("secret", "secret_hash"),),
            )
            assert keys.rotate(batch_size=2, metadata=metadata) == 5
            assert keys.rotate(metadata=metadata) == 0
            db.session.remove()

        newest = Keyring([new_key])
        with new_app.app_context():
            raw = db.session.execute(
                select(type_coerce(probe.c.secret, String), probe.c.secret_hash, probe.c.plain)
            ).all()
            db.session.remove()
        for token, lookup_hash, plain in raw:
            if plain == "none":
                assert (token, lookup_hash) == (None, None)
                continue
            assert newest.is_current(token)
            secret = newest.decrypt(token)
            assert secret == "s" + plain[1:]
            assert lookup_hash == newest.lookup_hash(secret)
    finally:
        with old_app.app_context():
            metadata.drop_all(db.engine)
