"""Start-up checks of the Redis server that data-streams relies on.

Redis keeps the schedules (RedBeat entries), the stream definitions and every batch. A
server whose ``maxmemory-policy`` may evict keys drops them silently under memory pressure,
so each service warns at start-up: web (from ``load-streams``, which the Procfile runs
first), the Celery workers (``worker_ready``) and beat (``beat_init``). Nothing connects at
import time, and a server that refuses CONFIG GET (managed Redis) is only noted.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from celery.signals import beat_init, worker_ready
from flask import Flask

log = logging.getLogger(__name__)

SAFE_POLICY = "noeviction"


def eviction_policy(connection: redis.Redis) -> str | None:
    """Return the server's maxmemory-policy, or None when it cannot be read."""
    try:
        reply: Any = connection.config_get("maxmemory-policy")
    except redis.ResponseError:  # CONFIG disabled or renamed (managed Redis)
        return None
    value = reply.get("maxmemory-policy")
    return value.decode() if isinstance(value, bytes) else value


def warn_if_evicting(connection: redis.Redis, service: str) -> str | None:
    """Log a WARNING unless Redis runs with `noeviction`; return the policy found."""
    try:
        policy = eviction_policy(connection)
    except redis.RedisError as exc:
        log.warning("%s: cannot check Redis maxmemory-policy: %s", service, exc)
        return None
    if policy is None:
        log.info("%s: Redis refused CONFIG GET; make sure maxmemory-policy is %s",
                 service, SAFE_POLICY)
    elif policy != SAFE_POLICY:
        log.warning("%s: Redis maxmemory-policy is %r, not %r: under memory pressure Redis "
                    "will evict keys and RedBeat schedules, stream definitions and batches "
                    "vanish silently. Set `maxmemory-policy %s` in redis.conf.",
                    service, policy, SAFE_POLICY, SAFE_POLICY)
    return policy


def init_app(app: Flask) -> None:
    """Check the policy when a Celery worker is ready and when beat starts."""

    def on_worker_ready(sender: Any = None, **_: Any) -> None:
        warn_if_evicting(app.extensions["redis"], f"worker {getattr(sender, 'hostname', '')}")

    def on_beat_init(sender: Any = None, **_: Any) -> None:
        warn_if_evicting(app.extensions["redis"], "beat")

    worker_ready.connect(on_worker_ready, weak=False)
    beat_init.connect(on_beat_init, weak=False)
