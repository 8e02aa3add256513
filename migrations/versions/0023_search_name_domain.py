"""search that finds people: the name folded (accents, case), the email's domain hash

Revision ID: 0023_search
Revises: 0022_export
Create Date: 2026-12-02 15:50:00

Existing rows are filled in batches: the folded name from the name, the
domain's keyed hash from the decrypted address (the keyring of the running
app, as 0005 did). The two helpers are copied here as they are today, so the
migration keeps doing what it did if the application's code changes.
"""
import unicodedata

from alembic import op
import sqlalchemy as sa
from flask import current_app


# revision identifiers, used by Alembic.
revision = '0023_search'
down_revision = '0022_export'
branch_labels = None
depends_on = None

BATCH = 1000


def _fold(text):
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def _domain(address):
    return "@" + address.strip().rpartition("@")[2].lower()


def upgrade():
    with op.batch_alter_table('quote_request', schema=None) as batch_op:
        batch_op.add_column(sa.Column('name_folded', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('email_domain_hash', sa.String(length=64), nullable=True))
        batch_op.create_index(
            'ix_quote_request_domain_hash', ['email_domain_hash', 'created_at'], unique=False
        )
    keyring = current_app.extensions["keyring"]
    connection = op.get_bind()
    last = 0
    while True:
        rows = connection.execute(
            sa.text(
                "SELECT id, full_name, email FROM quote_request WHERE id > :last "
                "ORDER BY id LIMIT :batch"
            ),
            {"last": last, "batch": BATCH},
        ).all()
        if not rows:
            return
        for row_id, full_name, encrypted in rows:
            email = keyring.decrypt(encrypted) if encrypted else ""
            connection.execute(
                sa.text(
                    "UPDATE quote_request SET name_folded = :name, email_domain_hash = :domain "
                    "WHERE id = :id"
                ),
                {
                    "id": row_id,
                    "name": _fold(full_name) if full_name else None,
                    "domain": keyring.lookup_hash(_domain(email)) if email else None,
                },
            )
        last = rows[-1][0]


def downgrade():
    with op.batch_alter_table('quote_request', schema=None) as batch_op:
        batch_op.drop_index('ix_quote_request_domain_hash')
        batch_op.drop_column('email_domain_hash')
        batch_op.drop_column('name_folded')
