"""The app's shared clients, built once by `init_app`: Redis, the Store and Celery.

Flask's tutorial keeps its database behind `init_app(app)` and `get_db()`; this module does
the same for Redis and the store. Celery is wired the way Flask's Celery example does it:
every Celery setting comes from the one config key ``CELERY``, the Celery app is kept in
``app.extensions["celery"]``, and every task runs inside an app context (`FlaskTask`), so
tasks reach Redis and settings through the same accessors as views. A test passes its own
client (fakeredis) as ``REDIS_CLIENT``.
"""

from __future__ import annotations

from typing import Any

import redis
from celery import Celery, Task
from flask import Flask, current_app

from app.store import Store, build_store


def init_app(app: Flask) -> None:
    """Create the app's Redis client, store and Celery app (nothing connects yet)."""
    connection = app.config.get("REDIS_CLIENT") or redis.Redis.from_url(
        app.config["REDIS_URL"], decode_responses=True, health_check_interval=30,
        socket_connect_timeout=5, socket_timeout=30, retry_on_timeout=True)
    app.extensions["redis"] = connection
    app.extensions["store"] = build_store(connection, app.config)
    app.extensions["celery"] = _celery(app)


def _celery(app: Flask) -> Celery:
    """Create the Celery app of `app`; RedBeat shares a test's Redis client."""

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
    return celery_app


def get_redis() -> redis.Redis:
    """Return the current app's Redis client."""
    return current_app.extensions["redis"]


def get_store() -> Store:
    """Return the current app's store."""
    return current_app.extensions["store"]


def get_celery() -> Celery:
    """Return the current app's Celery app."""
    return current_app.extensions["celery"]
