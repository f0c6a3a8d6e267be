"""Celery wired to Flask the way Flask's own Celery example does it.

All Celery settings come from the one config key ``CELERY``; the Celery app is kept in
``app.extensions["celery"]``; every task runs inside an app context through `FlaskTask`,
so tasks reach Redis and settings through the same accessors as views.
"""

from __future__ import annotations

from typing import Any

from celery import Celery, Task
from flask import Flask


def celery_init_app(app: Flask) -> Celery:
    """Create the Celery app of `app` and share the app's Redis client with RedBeat."""

    class FlaskTask(Task):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            with app.app_context():
                return self.run(*args, **kwargs)

    celery_app = Celery(app.name, task_cls=FlaskTask)
    celery_app.config_from_object(app.config["CELERY"])
    celery_app.set_default()
    if app.config.get("REDIS_CLIENT") is not None:
        # Tests hand in one client (fakeredis): RedBeat uses it too instead of dialling out.
        celery_app.redbeat_redis = app.config["REDIS_CLIENT"]
    app.extensions["celery"] = celery_app
    return celery_app
