"""Blueprint of the probes: `/healthz` (this process is up) and `/readyz` (the system is).

`/readyz` answers 200 only when Redis answers a PING, at least one Celery worker consumes
the ``fetch`` queue and one the ``ingest`` queue (each answers a broadcast within
``READY_TIMEOUT_SECONDS``), and beat's RedBeat lock is held (the key exists with a TTL, so
beat renewed it within ``BEAT_LOCK_TIMEOUT``). Otherwise 503, naming what failed.
"""

from __future__ import annotations

from typing import Any

import redis
from celery import Celery
from flask import Blueprint, Response, current_app, jsonify

from app.extensions import get_redis
from config.names import FETCH_QUEUE, INGEST_QUEUE

# The queues a ready system consumes. Deliveries are not among them: without a deliver
# worker the data is still served, and the destinations' lag shows the gap (/metrics).
READY_QUEUES = (FETCH_QUEUE, INGEST_QUEUE)

bp = Blueprint("health", __name__)

BEAT_LOCK_KEY = "{redbeat}::lock"


def redis_check(connection: redis.Redis) -> dict[str, Any]:
    """Tell whether Redis answers a PING."""
    try:
        return {"ok": bool(connection.ping())}
    except redis.RedisError as exc:
        return {"ok": False, "error": type(exc).__name__}


def consumers(celery_app: Celery, timeout: float) -> dict[str, list[str]]:
    """Return, per queue, the workers that answered within `timeout` seconds."""
    found: dict[str, list[str]] = {queue: [] for queue in READY_QUEUES}
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
    connection = get_redis()
    checks = {"redis": redis_check(connection)}
    if checks["redis"]["ok"]:
        timeout = float(current_app.config.get("READY_TIMEOUT_SECONDS", 1.0))
        checks["workers"] = workers_check(current_app.extensions["celery"], timeout)
        checks["beat"] = beat_check(connection)
    ready = all(check["ok"] for check in checks.values())
    body = {"status": "ready" if ready else "not_ready", "checks": checks}
    return jsonify(body), 200 if ready else 503
