"""an index for the console's saved-view counts: assignee and status

Revision ID: 0024_console_counts
Revises: 0023_search
Create Date: 2026-12-02 16:40:00

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0024_console_counts'
down_revision = '0023_search'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('quote_request', schema=None) as batch_op:
        batch_op.create_index(
            'ix_quote_request_assignee_status', ['assignee_id', 'status'], unique=False
        )


def downgrade():
    with op.batch_alter_table('quote_request', schema=None) as batch_op:
        batch_op.drop_index('ix_quote_request_assignee_status')
