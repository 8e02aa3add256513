"""the coordinators' API: display names, outcomes, reopening, SLA sort, search tokens

Revision ID: 0017_coordapi
Revises: 0007_edges
Create Date: 2026-12-02 05:30:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0017_coordapi'
down_revision = '0015_hardening'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('name', sa.String(length=120), nullable=True))


def downgrade():
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.drop_column('name')
