"""Blueprint of the probes: `/healthz` (this process is up) and `/readyz` (the system is).

`/readyz` answers 200 only when every master behind the broker's Redis (``redis``) and
the store's (``store``, when ``STORE_URL`` names other servers) answers a PING: the one
Redis, the master its sentinels name, or every master of the cluster; replicas are
listed with their state, and a silent one fails nothing (its master still serves, but
has no failover). Then at least one Celery worker must consume the ``fetch`` queue and
one the ``ingest`` queue (each answers a broadcast within ``READY_TIMEOUT_SECONDS``),
and beat's RedBeat lock must be held (the key exists with a TTL, so beat renewed it
within ``BEAT_LOCK_TIMEOUT``). Otherwise 503, naming what failed. `/healthz` asks nothing
of Redis: restarting a web process heals no Redis server.
"""

from __future__ import annotations

from typing import Any

import redis
from celery import Celery
from flask import Blueprint, Response, current_app, jsonify
from redis.exceptions import RedisClusterException

from app.extensions import get_redis, get_store
from app.store.connection import refresh, servers
from config.names import QUEUES

bp = Blueprint("health", __name__)

BEAT_LOCK_KEY = "{redbeat}::lock"


def redis_check(connection: redis.Redis) -> dict[str, Any]:
    """Tell whether every master behind `connection` answers a PING; list every server."""
    try:
        found = _ping_all(connection)
        if not _masters_up(found):  # the layout may have changed (a failover): ask again
            refresh(connection)
            found = _ping_all(connection)
    except (redis.RedisError, RedisClusterException) as exc:  # no server answered at all
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": _masters_up(found), "servers": found}


def _ping_all(connection: redis.Redis) -> dict[str, dict[str, Any]]:
    found = {}
    for server in servers(connection):
        try:
            up = bool(server.client.ping())
        except redis.RedisError:
            up = False
        found[server.name] = {"role": server.role, "ok": up}
    return found


def _masters_up(found: dict[str, dict[str, Any]]) -> bool:
    return bool(found) and all(s["ok"] for s in found.values() if s["role"] != "replica")


def consumers(celery_app: Celery, timeout: float) -> dict[str, list[str]]:
    """Return, per queue, the workers that answered within `timeout` seconds."""
    found: dict[str, list[str]] = {queue: [] for queue in QUEUES}
    replies = celery_app.control.inspect(timeout=timeout).active_queues() or {}
    for node, queues in replies.items():
        for queue in queues or []:
            if queue.get("name") in found:
                found[queue["name"]].append(node)
    return found


def workers_check(celery_app: Celery, timeout: float) -> dict[str, Any]:
    """Tell whether the fetch and ingest queues each have a worker answering."""
    try:
        found = consumers(celery_app, timeout)
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": all(found.values()), "queues": found}


def beat_check(connection: redis.Redis) -> dict[str, Any]:
    """Tell whether beat holds its lock (the key lives, so it was renewed recently)."""
    try:
        ttl_ms = int(connection.pttl(BEAT_LOCK_KEY))
    except redis.RedisError as exc:
        return {"ok": False, "error": type(exc).__name__}
    if ttl_ms == -2:
        return {"ok": False, "error": "beat lock not held"}
    return {"ok": True, "lock_ttl_seconds": None if ttl_ms < 0 else round(ttl_ms / 1000, 3)}


@bp.get("/healthz")
def healthz() -> Response:
    """Answer 200 while this web process runs."""
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Answer 200 when Redis, a fetch worker, an ingest consumer and beat are all up."""
    connection, store = get_redis(), get_store().connection
    checks = {"redis": redis_check(connection)}
    if store is not connection:
        checks["store"] = redis_check(store)
    if all(check["ok"] for check in checks.values()):
        timeout = float(current_app.config.get("READY_TIMEOUT_SECONDS", 1.0))
        checks["workers"] = workers_check(current_app.extensions["celery"], timeout)
        checks["beat"] = beat_check(connection)
    ready = all(check["ok"] for check in checks.values())
    body = {"status": "ready" if ready else "not_ready", "checks": checks}
    return jsonify(body), 200 if ready else 503
