"""what an access-log row was about: the filters of a queue export

Revision ID: 0022_export
Revises: 0021_outcomes
Create Date: 2026-12-02 15:40:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0022_export'
down_revision = '0021_outcomes'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('access_log', schema=None) as batch_op:
        batch_op.add_column(sa.Column('detail', sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table('access_log', schema=None) as batch_op:
        batch_op.drop_column('detail')
