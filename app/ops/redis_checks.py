"""Start-up checks of every Redis server that data-streams relies on.

Redis keeps the schedules (RedBeat entries), the stream definitions and every batch. A
server whose ``maxmemory-policy`` may evict keys drops them silently under memory pressure,
so each service checks every server of both roles (the broker's Redis and the store's:
each master and replica of a cluster or a Sentinel group) at start-up: web (from
``load-streams``, which the Procfile runs first), the Celery workers (``worker_ready``) and
beat (``beat_init``). A server in cluster mode behind a URL that is not ``redis+cluster://``
is an error: the broker cannot run on a cluster, and a plain client of one node would
meet MOVED replies. Nothing connects at import time, and a server that refuses CONFIG
GET (managed Redis) is only noted.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from celery.signals import beat_init, worker_ready
from flask import Flask
from redis.cluster import RedisCluster
from redis.exceptions import RedisClusterException

from app.store.connection import servers

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


def check_role(connection: redis.Redis, role: str, service: str) -> list[str]:
    """Check every server behind `connection` (`role`: broker or store); return errors."""
    try:
        found = servers(connection)
    except (redis.RedisError, RedisClusterException) as exc:
        log.warning("%s: cannot reach the %s's Redis to check it: %s", service, role, exc)
        return []
    errors = []
    for server in found:
        if server.down:
            log.warning("%s: the %s's Redis %s (%s) is down: cannot check it", service, role,
                        server.name, server.role)
            continue
        warn_if_evicting(server.client, f"{service} ({role} {server.role} {server.name})")
        if _cluster_enabled(server.client) and not isinstance(connection, RedisCluster):
            errors.append(f"the {role}'s Redis {server.name} runs in cluster mode: "
                          + ("the broker cannot use a cluster (REDIS_URL)" if role == "broker"
                             else "write STORE_URL as redis+cluster://host:port,..."))
    for error in errors:
        log.error("%s: %s", service, error)
    return errors


def _cluster_enabled(connection: redis.Redis) -> bool:
    try:
        return bool(connection.info("cluster").get("cluster_enabled"))
    except redis.RedisError:
        return False


def check_all(app: Flask, service: str) -> list[str]:
    """Check the broker's and the store's servers (once when they are the same client)."""
    broker, store = app.extensions["redis"], app.extensions["store"].connection
    errors = check_role(broker, "broker", service)
    if store is not broker:
        errors += check_role(store, "store", service)
    return errors


def init_app(app: Flask) -> None:
    """Check the servers when a Celery worker is ready and when beat starts."""

    def on_worker_ready(sender: Any = None, **_: Any) -> None:
        check_all(app, f"worker {getattr(sender, 'hostname', '')}")

    def on_beat_init(sender: Any = None, **_: Any) -> None:
        check_all(app, "beat")

    worker_ready.connect(on_worker_ready, weak=False)
    beat_init.connect(on_beat_init, weak=False)
