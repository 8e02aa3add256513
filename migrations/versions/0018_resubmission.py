"""a resubmission is its own request, marked as a possible duplicate of the open one

Revision ID: 0018_resubmission
Revises: 0017_coordapi
Create Date: 2026-12-02 15:10:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0018_resubmission'
down_revision = '0017_coordapi'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('quote_request', schema=None) as batch_op:
        batch_op.add_column(sa.Column('possible_duplicate_of_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('duplicate_decision', sa.String(length=20), nullable=True))
        batch_op.create_index(
            'ix_quote_request_possible_duplicate_of_id', ['possible_duplicate_of_id'], unique=False
        )
        batch_op.create_foreign_key(
            'fk_quote_request_possible_duplicate_of_id_quote_request',
            'quote_request',
            ['possible_duplicate_of_id'],
            ['id'],
        )


def downgrade():
    with op.batch_alter_table('quote_request', schema=None) as batch_op:
        batch_op.drop_constraint(
            'fk_quote_request_possible_duplicate_of_id_quote_request', type_='foreignkey'
        )
        batch_op.drop_index('ix_quote_request_possible_duplicate_of_id')
        batch_op.drop_column('duplicate_decision')
        batch_op.drop_column('possible_duplicate_of_id')
