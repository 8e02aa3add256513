"""The Celery app, made from the Flask app: `celery -A worker worker` / `celery -A worker beat`."""

from celery.signals import worker_process_init

from quote_service import create_app
from quote_service.extensions import db
from worker.observability import MetricsServerStep  # also connects the task signals
from worker.relay import OutboxRelayStep
from worker.schedule import BEAT_SCHEDULE

flask_app = create_app()
celery = flask_app.extensions["celery"]
celery.steps["worker"].add(OutboxRelayStep)
celery.steps["worker"].add(MetricsServerStep)
celery.conf.beat_schedule = BEAT_SCHEDULE

import worker.tasks  # noqa: E402,F401  (registers the tasks on this app)


@worker_process_init.connect
def _fresh_connections_after_fork(**kwargs: object) -> None:
    # A forked pool process must not share the parent's database sockets.
    with flask_app.app_context():
        db.engine.dispose(close=False)
