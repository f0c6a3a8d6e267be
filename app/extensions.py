"""The app's shared clients, built once by `init_app`: Redis, the Store and Celery.

Two Redis roles: `get_redis()` is the broker's Redis (``REDIS_URL``: Celery's queues and
RedBeat's schedules), `get_store().connection` the batch store's (``STORE_URL``, by
default the same server, and then the same client). Flask's tutorial keeps its database
behind `init_app(app)` and `get_db()`; this module does the same for Redis and the store.
Celery is wired the way Flask's Celery example does it: every Celery setting comes from
the one config key ``CELERY``, the Celery app is kept in ``app.extensions["celery"]``, and
every task runs inside an app context (`FlaskTask`), so tasks reach Redis and settings
through the same accessors as views. A test passes its own client (fakeredis) as
``REDIS_CLIENT``, used for both roles.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import redis
from celery import Celery, Task
from celery.signals import beat_init
from flask import Flask, current_app
from redis.backoff import ConstantBackoff
from redis.retry import Retry

from app.store import Store, build_store
from app.store.connection import connect
from config import defaults, redis_url


def init_app(app: Flask) -> None:
    """Create the app's Redis clients, store and Celery app (nothing connects yet)."""
    injected = app.config.get("REDIS_CLIENT")
    broker = injected or connect(redis_url.broker_url(app.config["REDIS_URL"]))
    store_url = app.config.get("STORE_URL") or app.config["REDIS_URL"]
    if injected or store_url == app.config["REDIS_URL"]:
        store = broker
    else:
        store = connect(redis_url.parse(store_url, "STORE_URL"))
    app.extensions["redis"] = broker
    app.extensions["store"] = build_store(store, app.config)
    app.extensions["celery"] = _celery(app)


def _celery(app: Flask) -> Celery:
    """Create the Celery app of `app`; RedBeat uses the broker's client (or a test's)."""

    class FlaskTask(Task):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            with app.app_context():
                return self.run(*args, **kwargs)

    celery_app = Celery(app.name, task_cls=FlaskTask)
    celery_app.config_from_object(app.config["CELERY"])
    celery_app.set_default()
    # RedBeat's entries and beat's lock go through the broker's client (one Redis or the
    # master Sentinel names), so `keep_beat_through_failover` can make its lock patient.
    celery_app.redbeat_redis = app.extensions["redis"]
    lock_seconds = app.config["CELERY"].get("redbeat_lock_timeout", defaults.BEAT_LOCK_TIMEOUT)
    beat_init.connect(partial(keep_beat_through_failover, app.extensions["redis"],
                              lock_seconds), weak=False)
    return celery_app


def keep_beat_through_failover(connection: redis.Redis, seconds: int, **_: Any) -> None:
    """In beat only: retry each Redis command every second for up to the lock's life.

    redis-py retries three times in a few seconds, then beat's lock renewal raises and
    beat exits; a Sentinel failover takes longer than that. A longer outage than the
    lock's life still ends beat, whose lock has expired by then anyway.
    """
    connection.set_retry(Retry(ConstantBackoff(1), seconds))


def get_redis() -> redis.Redis:
    """Return the current app's broker Redis client (queues, RedBeat)."""
    return current_app.extensions["redis"]


def get_store() -> Store:
    """Return the current app's store."""
    return current_app.extensions["store"]


def get_celery() -> Celery:
    """Return the current app's Celery app."""
    return current_app.extensions["celery"]
