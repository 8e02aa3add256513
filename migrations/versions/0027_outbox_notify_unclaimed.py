"""the outbox's NOTIFY only for rows the relay is to publish, not for rows a run claimed as it wrote them

Revision ID: 0027_outbox_notify_unclaimed
Revises: 0026_outbox_notify
Create Date: 2026-12-04 20:00:00

"""

from alembic import op


# revision identifiers, used by Alembic.
revision = "0027_outbox_notify_unclaimed"
down_revision = "0026_outbox_notify"
branch_labels = None
depends_on = None

# services/outbox.py NOTIFY_CHANNEL, which the relay LISTENs on.
CHANNEL = "quote_service_outbox"


def upgrade():
    if op.get_context().dialect.name != "postgresql":
        return  # SQLite has no NOTIFY: its relay polls
    # A routing writes its emails' rows claimed by its own run (holder set):
    # it sends them itself, and waking the relay for them would find nothing due.
    op.execute(
        "CREATE OR REPLACE FUNCTION notify_outbox() RETURNS trigger LANGUAGE plpgsql AS $$"
        " BEGIN IF EXISTS (SELECT 1 FROM added WHERE holder IS NULL) THEN"
        f" PERFORM pg_notify('{CHANNEL}', ''); END IF; RETURN NULL; END $$"
    )
    op.execute("DROP TRIGGER outbox_message_notifies ON outbox_message")
    op.execute(
        "CREATE TRIGGER outbox_message_notifies AFTER INSERT ON outbox_message"
        " REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION notify_outbox()"
    )


def downgrade():
    if op.get_context().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER outbox_message_notifies ON outbox_message")
    op.execute(
        "CREATE OR REPLACE FUNCTION notify_outbox() RETURNS trigger LANGUAGE plpgsql AS $$"
        f" BEGIN PERFORM pg_notify('{CHANNEL}', ''); RETURN NULL; END $$"
    )
    op.execute(
        "CREATE TRIGGER outbox_message_notifies AFTER INSERT ON outbox_message"
        " FOR EACH STATEMENT EXECUTE FUNCTION notify_outbox()"
    )
