"""The Redis client and the store objects of one app, built once by `init_app`.

Flask's tutorial keeps its database behind `init_app(app)` and `get_db()`; this module does
the same for Redis. A test passes its own client (fakeredis) as ``REDIS_CLIENT``.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis
from flask import Flask, current_app

from app.store.batches import BatchWriter, Retention
from app.store.definitions import Definitions
from app.store.locks import StreamLocks
from app.store.reader import Reader


@dataclass(frozen=True)
class Store:
    """Every store object, sharing one Redis client."""

    connection: redis.Redis
    definitions: Definitions
    locks: StreamLocks
    writer: BatchWriter
    reader: Reader


def build_store(connection: redis.Redis, config: dict) -> Store:
    """Build the store objects from a client and the app's config."""
    prefix = config["KEY_PREFIX"]
    lock_ms = config["LOCK_TIMEOUT_SECONDS"] * 1000
    retention = Retention(keep_versions=config["KEEP_VERSIONS"],
                          grace_seconds=config["GRACE_SECONDS"],
                          history_length=config["HISTORY_LENGTH"],
                          change_history=config["CHANGE_HISTORY"],
                          staging_ttl_ms=lock_ms + config["GRACE_SECONDS"] * 1000,
                          lock_ttl_ms=lock_ms)
    return Store(connection=connection,
                 definitions=Definitions(connection, prefix),
                 locks=StreamLocks(connection, prefix, lock_ms),
                 writer=BatchWriter(connection, prefix, retention),
                 reader=Reader(connection, prefix))


def init_app(app: Flask) -> None:
    """Create the app's Redis client (no connection is made until first use)."""
    connection = app.config.get("REDIS_CLIENT") or redis.Redis.from_url(
        app.config["REDIS_URL"], decode_responses=True, health_check_interval=30,
        socket_connect_timeout=5, socket_timeout=30, retry_on_timeout=True)
    app.extensions["redis"] = connection
    app.extensions["store"] = build_store(connection, app.config)


def get_redis() -> redis.Redis:
    """Return the current app's Redis client."""
    return current_app.extensions["redis"]


def get_store() -> Store:
    """Return the current app's store objects."""
    return current_app.extensions["store"]
