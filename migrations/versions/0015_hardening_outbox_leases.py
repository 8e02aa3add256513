"""outbox leases: the task run holding a row, its failures and the reason it was given up

A running task holds its outbox row (`holder`, `started_at`) with a short lease
it renews; a run that dies lets the lease run out within seconds instead of
waiting out the old five-minute publication lease. `failures` counts runs that
ended in an error or died; past a bound the row is given up (`failed_at`,
`last_error`). Existing rows get none of them, which reads as "never started".

Revision ID: 0015_hardening
Revises: 0007_edges
Create Date: 2026-12-02 05:30:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0015_hardening'
down_revision = '0007_edges'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.add_column(sa.Column('started_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('holder', sa.String(length=32), nullable=True))
        batch_op.add_column(
            sa.Column('failures', sa.Integer(), nullable=False, server_default='0')
        )
        batch_op.add_column(sa.Column('failed_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('last_error', sa.String(length=200), nullable=True))
    # The default stays on the server: rows written by COPY (the bench) or by
    # hand name only the columns they know.


def downgrade():
    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.drop_column('last_error')
        batch_op.drop_column('failed_at')
        batch_op.drop_column('failures')
        batch_op.drop_column('holder')
        batch_op.drop_column('started_at')
