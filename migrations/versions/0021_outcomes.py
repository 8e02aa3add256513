"""the outcome a coordinator closes a request with

Revision ID: 0021_outcomes
Revises: 0020_providercity
Create Date: 2026-12-02 15:40:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0021_outcomes'
down_revision = '0020_providercity'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('quote_request', schema=None) as batch_op:
        batch_op.add_column(sa.Column('outcome', sa.String(length=20), nullable=True))


def downgrade():
    with op.batch_alter_table('quote_request', schema=None) as batch_op:
        batch_op.drop_column('outcome')
