"""a catalog version, bumped by triggers on every table the intake checks against

Revision ID: 0025_catalog_version
Revises: 0024_console_counts
Create Date: 2026-12-02 20:20:00

"""

import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = "0025_catalog_version"
down_revision = "0024_console_counts"
branch_labels = None
depends_on = None

# What services/catalog_snapshot.py keeps per process.
WATCHED = (
    "destination",
    "condition",
    "treatment",
    "destination_condition",
    "language",
    "consent_text",
)


def upgrade():
    op.create_table(
        "catalog_version",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalog_version")),
    )
    op.execute("INSERT INTO catalog_version (id, version) VALUES (1, 1)")
    if op.get_context().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION bump_catalog_version() RETURNS trigger LANGUAGE plpgsql AS $$"
            " BEGIN UPDATE catalog_version SET version = version + 1 WHERE id = 1;"
            " RETURN NULL; END $$"
        )
        for table in WATCHED:
            # Once per statement, whatever it touched, TRUNCATE included.
            op.execute(
                f"CREATE TRIGGER {table}_bumps_catalog_version"
                f" AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table}"
                " FOR EACH STATEMENT EXECUTE FUNCTION bump_catalog_version()"
            )
    else:  # SQLite has row triggers only, one per kind of write
        for table in WATCHED:
            for write in ("INSERT", "UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_{write.lower()}_bumps_catalog_version"
                    f" AFTER {write} ON {table} BEGIN"
                    " UPDATE catalog_version SET version = version + 1 WHERE id = 1; END"
                )


def downgrade():
    if op.get_context().dialect.name == "postgresql":
        for table in WATCHED:
            op.execute(f"DROP TRIGGER {table}_bumps_catalog_version ON {table}")
        op.execute("DROP FUNCTION bump_catalog_version()")
    else:
        for table in WATCHED:
            for write in ("insert", "update", "delete"):
                op.execute(f"DROP TRIGGER {table}_{write}_bumps_catalog_version")
    op.drop_table("catalog_version")
