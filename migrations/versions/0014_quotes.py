"""clinic quotes: invitations, quotes, quote items, disclaimer context

Revision ID: 0014_quotes
Revises: 0010_console
Create Date: 2026-12-01 22:00:00

"""
from alembic import op
import sqlalchemy as sa

revision = "0014_quotes"
down_revision = "0010_console"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "quote_item",
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.Column("names", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("slug", name=op.f("pk_quote_item")),
    )
    with op.batch_alter_table("disclaimer") as batch_op:
        batch_op.add_column(sa.Column("context", sa.String(length=16), nullable=True))
    op.create_table(
        "invitation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("quote_request_id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("token_salt", sa.String(length=32), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("respond_by", sa.DateTime(timezone=True), nullable=False),
        sa.Column("remind_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reminded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decline_reason", sa.String(length=32), nullable=True),
        sa.Column("decline_note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["provider_id"], ["provider.id"], name=op.f("fk_invitation_provider_id_provider")
        ),
        sa.ForeignKeyConstraint(
            ["quote_request_id"],
            ["quote_request.id"],
            name=op.f("fk_invitation_quote_request_id_quote_request"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invitation")),
        sa.UniqueConstraint(
            "quote_request_id", "provider_id", name=op.f("uq_invitation_quote_request_id_provider_id")
        ),
        sa.UniqueConstraint("token_hash", name=op.f("uq_invitation_token_hash")),
    )
    op.create_index(
        "ix_invitation_status_respond_by", "invitation", ["status", "respond_by"], unique=False
    )
    op.create_index(
        "ix_invitation_status_remind_at", "invitation", ["status", "remind_at"], unique=False
    )
    op.create_index(
        "ix_invitation_provider_sent", "invitation", ["provider_id", "sent_at"], unique=False
    )
    op.create_table(
        "clinic_quote",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("invitation_id", sa.Integer(), nullable=False),
        sa.Column("quote_request_id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("price_min", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("price_max", sa.Numeric(precision=12, scale=2), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("includes", sa.JSON(), nullable=False),
        sa.Column("excludes", sa.JSON(), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=False),
        sa.Column("earliest_start", sa.Date(), nullable=True),
        sa.Column("doctor", sa.Text(), nullable=True),
        sa.Column("evidence", sa.String(length=20), nullable=False),
        sa.Column("trial_id", sa.String(length=32), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["invitation_id"], ["invitation.id"], name=op.f("fk_clinic_quote_invitation_id_invitation")
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"], ["provider.id"], name=op.f("fk_clinic_quote_provider_id_provider")
        ),
        sa.ForeignKeyConstraint(
            ["quote_request_id"],
            ["quote_request.id"],
            name=op.f("fk_clinic_quote_quote_request_id_quote_request"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clinic_quote")),
        sa.UniqueConstraint("invitation_id", name=op.f("uq_clinic_quote_invitation_id")),
    )
    op.create_index(
        op.f("ix_clinic_quote_quote_request_id"), "clinic_quote", ["quote_request_id"], unique=False
    )


def downgrade():
    op.drop_index(op.f("ix_clinic_quote_quote_request_id"), table_name="clinic_quote")
    op.drop_table("clinic_quote")
    op.drop_index("ix_invitation_provider_sent", table_name="invitation")
    op.drop_index("ix_invitation_status_remind_at", table_name="invitation")
    op.drop_index("ix_invitation_status_respond_by", table_name="invitation")
    op.drop_table("invitation")
    with op.batch_alter_table("disclaimer") as batch_op:
        batch_op.drop_column("context")
    op.drop_table("quote_item")
