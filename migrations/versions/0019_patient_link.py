"""the patient's link: a token per request (salt and hash), privacy requests

Revision ID: 0019_patient_link
Revises: 0018_resubmission
Create Date: 2026-12-02 15:10:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0019_patient_link'
down_revision = '0018_resubmission'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('quote_request', schema=None) as batch_op:
        batch_op.add_column(sa.Column('patient_token_salt', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('patient_token_hash', sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint(
            batch_op.f('uq_quote_request_patient_token_hash'), ['patient_token_hash']
        )
    op.create_table(
        'privacy_request',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('quote_request_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('fulfilled_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('fulfilled_by', sa.String(length=120), nullable=True),
        sa.ForeignKeyConstraint(
            ['quote_request_id'],
            ['quote_request.id'],
            name=op.f('fk_privacy_request_quote_request_id_quote_request'),
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_privacy_request')),
    )
    op.create_index(
        op.f('ix_privacy_request_quote_request_id'), 'privacy_request', ['quote_request_id']
    )
    op.create_index('ix_privacy_request_status_due', 'privacy_request', ['status', 'due_at'])


def downgrade():
    op.drop_index('ix_privacy_request_status_due', table_name='privacy_request')
    op.drop_index(op.f('ix_privacy_request_quote_request_id'), table_name='privacy_request')
    op.drop_table('privacy_request')
    with op.batch_alter_table('quote_request', schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f('uq_quote_request_patient_token_hash'), type_='unique'
        )
        batch_op.drop_column('patient_token_hash')
        batch_op.drop_column('patient_token_salt')
