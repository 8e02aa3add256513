"""the catalog version bumped by writes to disclaimers too: the snapshot keeps them

Revision ID: 0028_catalog_version_disclaimers
Revises: 0027_outbox_notify_unclaimed
Create Date: 2026-12-06 22:00:00

"""

from alembic import op


# revision identifiers, used by Alembic.
revision = "0028_catalog_version_disclaimers"
down_revision = "0027_outbox_notify_unclaimed"
branch_labels = None
depends_on = None

TABLE = "disclaimer"


def upgrade():
    # The function bump_catalog_version() and the SQLite form are 0025's.
    if op.get_context().dialect.name == "postgresql":
        op.execute(
            f"CREATE TRIGGER {TABLE}_bumps_catalog_version"
            f" AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {TABLE}"
            " FOR EACH STATEMENT EXECUTE FUNCTION bump_catalog_version()"
        )
    else:
        for write in ("INSERT", "UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {TABLE}_{write.lower()}_bumps_catalog_version"
                f" AFTER {write} ON {TABLE} BEGIN"
                " UPDATE catalog_version SET version = version + 1 WHERE id = 1; END"
            )


def downgrade():
    if op.get_context().dialect.name == "postgresql":
        op.execute(f"DROP TRIGGER {TABLE}_bumps_catalog_version ON {TABLE}")
    else:
        for write in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER {TABLE}_{write}_bumps_catalog_version")
