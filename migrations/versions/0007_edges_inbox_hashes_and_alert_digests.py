"""inbox hashes (the address without its +tag) and alert digests

The duplicate check and the daily cap of acknowledgements count per inbox:
`quote_request.email_mailbox_hash` and `notification.recipient_mailbox_hash`, keyed
hashes like the others. Rows written before this revision have none, so they
count by their exact address only; both checks look back 24 hours, so that
difference is gone a day after the upgrade. A digest of coordinator alerts
names many requests, so `notification.quote_request_id` may be empty.

Revision ID: 0007_edges
Revises: 0011_urgent
Create Date: 2026-12-01 21:40:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0007_edges'
down_revision = '0011_urgent'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.add_column(sa.Column('recipient_mailbox_hash', sa.String(length=64), nullable=True))
        batch_op.alter_column('quote_request_id', existing_type=sa.Integer(), nullable=True)
        batch_op.create_index(
            'ix_notification_recipient_mailbox', ['recipient_mailbox_hash', 'created_at'], unique=False
        )

    with op.batch_alter_table('quote_request', schema=None) as batch_op:
        batch_op.add_column(sa.Column('email_mailbox_hash', sa.String(length=64), nullable=True))
        batch_op.create_index('ix_quote_request_mailbox_hash', ['email_mailbox_hash', 'created_at'], unique=False)


def downgrade():
    with op.batch_alter_table('quote_request', schema=None) as batch_op:
        batch_op.drop_index('ix_quote_request_mailbox_hash')
        batch_op.drop_column('email_mailbox_hash')

    # Digests belong to no request; they cannot stay once every row must have one.
    op.execute("DELETE FROM notification WHERE quote_request_id IS NULL")
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.drop_index('ix_notification_recipient_mailbox')
        batch_op.alter_column('quote_request_id', existing_type=sa.Integer(), nullable=False)
        batch_op.drop_column('recipient_mailbox_hash')
