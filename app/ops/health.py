"""Blueprint of the probes: `/healthz` (this process is up) and `/readyz` (the system is).

`/healthz` is a liveness probe: it answers 200 while the process serves, whatever Redis
does, because restarting web processes heals no Redis server (an orchestrator that
restarted them on a dead Redis node would only add an outage). Its body still covers every
Redis server behind ``REDIS_URL`` and ``STORE_URL`` (the one Redis, the master Sentinel
names and its replicas, every master and replica of a cluster, and the servers they mark
failed), each with its role, whether it answered and its ``maxmemory-policy``; "status" is
"degraded", naming each server that is down or may evict keys, else "ok" ("unknown" until
the first check of the process ends). It reads the last answer of a `ReadyProbe` of its own
(Redis servers only, no worker broadcast) and never waits.

`/readyz` answers 200 only when every master behind the broker's Redis (``redis``) and
the store's (``store``, when ``STORE_URL`` names other servers) answers a PING: the one
Redis, the master its sentinels name, or every master of the cluster; replicas are
listed with their state, and a silent one fails nothing (its master still serves, but
has no failover). Then at least one Celery worker must consume the ``fetch`` queue and
one the ``ingest`` queue (each answers a broadcast within ``READY_TIMEOUT_SECONDS``),
and beat's RedBeat lock must be held (the key exists with a TTL, so beat renewed it
within ``BEAT_LOCK_TIMEOUT``). Otherwise 503, naming what failed.

The probe is open to anyone, so it must be cheap: `ReadyProbe` runs the checks in a thread
of its own at most once per ``READY_CACHE_SECONDS`` per web process and every caller reads
the last answer (``checked_at`` says when it was taken). A caller waits for a running check
at most ``READY_TIMEOUT_SECONDS`` + `WAIT_MARGIN` after it began, never for a hung Redis.
Workers are counted per queue, never named: the answer tells no one the hosts.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import redis
from celery import Celery
from flask import Blueprint, Flask, Response, current_app, jsonify
from redis.exceptions import RedisClusterException

from app.ops.redis_checks import SAFE_POLICY, eviction_policy
from app.records import iso_at
from app.store.connection import refresh, servers
from config.names import FETCH_QUEUE, INGEST_QUEUE, QUEUES

# The queues a ready system consumes. Deliveries are not among them: without a deliver
# worker the data is still served, and the destinations' lag shows the gap (/metrics).
READY_QUEUES = (FETCH_QUEUE, INGEST_QUEUE)

bp = Blueprint("health", __name__)

BEAT_LOCK_KEY = "{redbeat}::lock"
# Beyond the workers' broadcast, how long a caller may wait for a check, in seconds.
WAIT_MARGIN = 1.0


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
        up, policy = False, None
        try:
            if not server.down:
                up = bool(server.client.ping())
                policy = eviction_policy(server.client)
        except redis.RedisError:
            pass
        found[server.name] = {"role": server.role, "ok": up, "eviction_policy": policy}
    return found


def _masters_up(found: dict[str, dict[str, Any]]) -> bool:
    return bool(found) and all(s["ok"] for s in found.values()
                               if s["role"] in ("master", "single"))


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
    return {"ok": all(found[queue] for queue in READY_QUEUES),
            "queues": {queue: len(found[queue]) for queue in READY_QUEUES}}


def beat_check(connection: redis.Redis) -> dict[str, Any]:
    """Tell whether beat holds its lock (the key lives, so it was renewed recently)."""
    try:
        ttl_ms = int(connection.pttl(BEAT_LOCK_KEY))
    except redis.RedisError as exc:
        return {"ok": False, "error": type(exc).__name__}
    if ttl_ms == -2:
        return {"ok": False, "error": "beat lock not held"}
    return {"ok": True, "lock_ttl_seconds": None if ttl_ms < 0 else round(ttl_ms / 1000, 3)}


def node_health(checks: dict[str, dict[str, Any]] | None) -> dict[str, Any]:
    """Return every Redis server of the last checks with its state, and which fail."""
    if checks is None:
        return {"status": "unknown", "nodes": {}, "failing": []}
    nodes: dict[str, dict[str, Any]] = {}
    failing = []
    for role in ("redis", "store"):
        check = checks.get(role)
        if check is None:
            continue
        if "servers" not in check:  # no server answered at all
            failing.append(f"{role}: {check.get('error', 'unreachable')}")
            continue
        nodes[role] = {}
        for name, server in check["servers"].items():
            policy = server.get("eviction_policy")
            evicting = policy is not None and policy != SAFE_POLICY
            nodes[role][name] = {"role": server["role"], "reachable": server["ok"],
                                 "eviction_policy": policy, "evicts_keys": evicting}
            if not server["ok"] or evicting:
                failing.append(f"{role} {server['role']} {name}: "
                               + ("unreachable" if not server["ok"] else f"evicts ({policy})"))
    return {"status": "degraded" if failing else "ok", "nodes": nodes, "failing": failing}


@bp.get("/healthz")
def healthz() -> Response:
    """Answer 200 while this web process runs, with the Redis servers as last checked."""
    body = current_app.extensions["nodes"].latest()
    checks = body["checks"] if body is not None else None
    return jsonify({**node_health(checks),
                    "checked_at": body["checked_at"] if body is not None else None})


def run_checks(connection: redis.Redis, store: redis.Redis, celery_app: Celery,
               timeout: float, with_workers: bool = True) -> dict[str, Any]:
    """Return the checks of the broker's and the store's Redis, then (`with_workers`) of
    workers and beat."""
    checks = {"redis": redis_check(connection)}
    if store is not connection:
        checks["store"] = redis_check(store)
    if with_workers and all(check["ok"] for check in checks.values()):
        checks["workers"] = workers_check(celery_app, timeout)
        checks["beat"] = beat_check(connection)
    ready = all(check["ok"] for check in checks.values())
    return {"status": "ready" if ready else "not_ready", "checks": checks,
            "checked_at": iso_at(time.time())}


class ReadyProbe:
    """The readiness of the system as last checked, refreshed at most once per `ttl`;
    without `with_workers`, of the Redis servers only (what /healthz shows: its checks
    never stand for /readyz's, so a web process polled for liveness while its workers
    start does not cache a readiness taken before they were up)."""

    def __init__(self, connection: redis.Redis, store: redis.Redis, celery_app: Celery, *,
                 timeout: float, ttl: float, with_workers: bool = True) -> None:
        self.connection = connection
        self.store = store
        self.celery_app = celery_app
        self.with_workers = with_workers
        self.timeout = timeout
        self.ttl = ttl
        self.lock = threading.Lock()
        self.body: dict[str, Any] | None = None
        self.checked = -float("inf")  # time.monotonic() of the last answer
        self.thread: threading.Thread | None = None
        self.started = 0.0

    def answer(self) -> dict[str, Any]:
        """Return the last answer if fresh; else start (or join) a check, briefly."""
        with self.lock:
            if time.monotonic() - self.checked < self.ttl and self.body is not None:
                return self.body
            thread = self._start()
            deadline = self.started + self.timeout + WAIT_MARGIN
        thread.join(max(0.0, deadline - time.monotonic()))
        with self.lock:
            if thread.is_alive() or self.body is None:
                return {"status": "not_ready", "checks": {"probe": {
                    "ok": False, "error": f"checks did not finish within "
                                          f"{self.timeout + WAIT_MARGIN:g} s"}},
                    "checked_at": iso_at(time.time())}
            return self.body

    def latest(self) -> dict[str, Any] | None:
        """Return the last answer at once (None before the first); refresh it if old."""
        with self.lock:
            if time.monotonic() - self.checked >= self.ttl:
                self._start()
            return self.body

    def _start(self) -> threading.Thread:
        """Start a check unless one runs (the caller holds the lock); return its thread."""
        if self.thread is None or not self.thread.is_alive():
            self.thread = threading.Thread(target=self._check, name="readyz", daemon=True)
            self.started = time.monotonic()
            self.thread.start()
        return self.thread

    def _check(self) -> None:
        body = run_checks(self.connection, self.store, self.celery_app, self.timeout,
                          self.with_workers)
        with self.lock:
            self.body, self.checked = body, time.monotonic()


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Answer 200 when Redis, a fetch worker, an ingest consumer and beat are all up."""
    body = current_app.extensions["readyz"].answer()
    return jsonify(body), 200 if body["status"] == "ready" else 503


def init_app(app: Flask) -> None:
    """Serve the probes with one `ReadyProbe` of each kind per web process."""
    for name, with_workers in (("readyz", True), ("nodes", False)):
        app.extensions[name] = ReadyProbe(
            app.extensions["redis"], app.extensions["store"].connection,
            app.extensions["celery"],
            timeout=float(app.config.get("READY_TIMEOUT_SECONDS", 1.0)),
            ttl=float(app.config.get("READY_CACHE_SECONDS", 5.0)), with_workers=with_workers)
    app.register_blueprint(bp)
