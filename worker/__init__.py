"""The Celery app, made from the Flask app: `celery -A worker worker` / `celery -A worker beat`."""

from celery.signals import worker_process_init, worker_process_shutdown
from sqlalchemy.orm import configure_mappers

from quote_service import create_app
from quote_service.extensions import db
from quote_service.mail.sender import close_kept_connection
from worker.observability import MetricsServerStep  # also connects the task signals
from worker.relay import OutboxRelayStep
from worker.schedule import BEAT_SCHEDULE

# No ping before each transaction: a worker commits several times per task,
# and each commit gives the connection back to the pool, so the ping was a
# round trip per commit. A connection the server closed fails its first
# statement instead, a transient error that the task retries at once on a new
# one (worker/tasks.py, run_outbox_task), as the relay does its next batch.
flask_app = create_app({"DATABASE_PRE_PING": False})
celery = flask_app.extensions["celery"]
celery.steps["worker"].add(OutboxRelayStep)
celery.steps["worker"].add(MetricsServerStep)
celery.conf.beat_schedule = BEAT_SCHEDULE

import worker.tasks  # noqa: E402,F401  (registers the tasks on this app)

# Nothing lazy is left for a pool child to set up under a lock it might
# inherit: the mappers are configured here, once, before any fork. (The
# forking process runs no thread of ours either: see worker/relay.py.)
configure_mappers()


@worker_process_init.connect
def _fresh_connections_after_fork(**kwargs: object) -> None:
    # A forked pool process must not share the parent's database sockets:
    # drop the inherited pool without closing its connections (they are the
    # parent's), so the child opens its own.
    with flask_app.app_context():
        db.engine.dispose(close=False)


@worker_process_shutdown.connect
def _close_the_mail_connection(**kwargs: object) -> None:
    # A pool process that ends says QUIT on the SMTP connection it kept.
    close_kept_connection()
