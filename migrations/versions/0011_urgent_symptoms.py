"""urgent symptoms: flag, matched rules and review on quote_request

Revision ID: 0011_urgent
Revises: 0014_quotes
Create Date: 2026-12-01 22:00:00

"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = '0011_urgent'
down_revision = '0014_quotes'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('quote_request', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('urgent', sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(sa.Column('safety', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('safety_verdict', sa.String(length=20), nullable=True))
        batch_op.create_index(
            'ix_quote_request_urgent_created', ['urgent', 'created_at', 'id'], unique=False
        )


def downgrade():
    with op.batch_alter_table('quote_request', schema=None) as batch_op:
        batch_op.drop_index('ix_quote_request_urgent_created')
        batch_op.drop_column('safety_verdict')
        batch_op.drop_column('safety')
        batch_op.drop_column('urgent')
