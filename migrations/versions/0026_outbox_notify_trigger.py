"""the outbox's NOTIFY sent by a trigger on its inserts, not by a statement of each writer

Revision ID: 0026_outbox_notify
Revises: 0025_catalog_version
Create Date: 2026-12-03 09:00:00

"""

from alembic import op


# revision identifiers, used by Alembic.
revision = "0026_outbox_notify"
down_revision = "0025_catalog_version"
branch_labels = None
depends_on = None

# services/outbox.py NOTIFY_CHANNEL, which the relay LISTENs on.
CHANNEL = "quote_service_outbox"


def upgrade():
    if op.get_context().dialect.name != "postgresql":
        return  # SQLite has no NOTIFY: its relay polls
    # Once per statement, delivered at commit: the relay wakes for committed
    # rows only, and PostgreSQL folds repeats within one transaction.
    op.execute(
        "CREATE FUNCTION notify_outbox() RETURNS trigger LANGUAGE plpgsql AS $$"
        f" BEGIN PERFORM pg_notify('{CHANNEL}', ''); RETURN NULL; END $$"
    )
    op.execute(
        "CREATE TRIGGER outbox_message_notifies AFTER INSERT ON outbox_message"
        " FOR EACH STATEMENT EXECUTE FUNCTION notify_outbox()"
    )


def downgrade():
    if op.get_context().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER outbox_message_notifies ON outbox_message")
    op.execute("DROP FUNCTION notify_outbox()")
