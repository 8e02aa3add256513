"""clinics' city, named to patients in their acknowledgement

Revision ID: 0020_providercity
Revises: 0019_patient_link
Create Date: 2026-12-02 15:05:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0020_providercity'
down_revision = '0019_patient_link'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('provider', schema=None) as batch_op:
        batch_op.add_column(sa.Column('city', sa.String(length=100), nullable=True))


def downgrade():
    with op.batch_alter_table('provider', schema=None) as batch_op:
        batch_op.drop_column('city')
