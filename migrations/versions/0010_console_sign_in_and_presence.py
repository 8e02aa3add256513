"""console: passwords, failed sign-ins, presence

Revision ID: 0010_console
Revises: 0013_deploy
Create Date: 2026-12-01 21:40:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0010_console'
down_revision = '0013_deploy'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('password_hash', sa.String(length=200), nullable=True))

    op.create_table('sign_in_failure',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email_hash', sa.String(length=64), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sign_in_failure'))
    )
    with op.batch_alter_table('sign_in_failure', schema=None) as batch_op:
        batch_op.create_index('ix_sign_in_failure_email_at', ['email_hash', 'at'], unique=False)

    op.create_table('presence',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('quote_request_id', sa.Integer(), nullable=False),
    sa.Column('since', sa.DateTime(timezone=True), nullable=False),
    sa.Column('seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['quote_request_id'], ['quote_request.id'], name=op.f('fk_presence_quote_request_id_quote_request')),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_presence_user_id_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_presence')),
    sa.UniqueConstraint('user_id', 'quote_request_id', name=op.f('uq_presence_user_id_quote_request_id'))
    )
    with op.batch_alter_table('presence', schema=None) as batch_op:
        batch_op.create_index('ix_presence_request_seen', ['quote_request_id', 'seen_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_presence_seen_at'), ['seen_at'], unique=False)


def downgrade():
    with op.batch_alter_table('presence', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_presence_seen_at'))
        batch_op.drop_index('ix_presence_request_seen')

    op.drop_table('presence')
    with op.batch_alter_table('sign_in_failure', schema=None) as batch_op:
        batch_op.drop_index('ix_sign_in_failure_email_at')

    op.drop_table('sign_in_failure')
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.drop_column('password_hash')
