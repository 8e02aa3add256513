"""The Celery app, made from the Flask app: `celery -A worker worker` / `celery -A worker beat`."""

from quote_service import create_app

flask_app = create_app()
celery = flask_app.extensions["celery"]
