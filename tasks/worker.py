"""Celery entry module, as in Flask's Celery example: `celery -A tasks.worker worker`."""

from app import create_app

flask_app = create_app()
celery_app = flask_app.extensions["celery"]
