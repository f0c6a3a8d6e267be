"""Publish cost: the fenced PUBLISH Lua step on a whole batch of 1k, 100k or 1M records.

The batch is sent as the worker sends it (tests/support/seed.py: the Outbox's messages, run
by the ingest tasks), all but its totals; the totals are recorded with the writer, then
`publish.settle` runs as the ingest consumer runs it after them. The Lua step's own time
comes from Redis' SLOWLOG (threshold 0), so it excludes the client's round trip; the whole
settle (preparers such as the change set, gates, the commit) is timed around the call.
"""

from __future__ import annotations

import time

import redis
from flask import Flask

from app import create_app
from app.extensions import get_store
from app.publish import settle as settle_batch
from app.records import encode
from app.store import scripts
from app.store.locks import BatchLease
from config.streams import StreamDefinition
from demo import item
from tests.support.seed import Seeder

CHUNK = 1000


def app_for(redis_url: str) -> Flask:
    """Return a data-streams app talking to the benchmark's Redis."""
    return create_app({"REDIS_URL": redis_url})


def stage(app: Flask, name: str, total: int) -> BatchLease:
    """Stage a whole batch of `total` demo records, ready to publish."""
    store = get_store()
    store.definitions.put(name, StreamDefinition.model_validate(
        {"source": {"url": "http://127.0.0.1:9/items"}, "publish_gate": {"allow_empty": True}}))
    batch = Seeder(app).batch(name)
    for start in range(0, total, CHUNK):
        batch.page([item(i, 0, 60) for i in range(start + 1, min(total, start + CHUNK) + 1)])
    store.writer.complete(batch.lease, len(batch.sizes), total, {})
    return batch.lease


def lua_micros(connection: redis.Redis, sha: str) -> int:
    """Return the duration of the last run of script `sha` in the slow log, in µs."""
    for entry in connection.slowlog_get(128):
        words = bytes(entry["command"]).split()
        if len(words) > 1 and words[0].upper() == b"EVALSHA" and words[1] == sha.encode():
            return int(entry["duration"])
    raise LookupError("the PUBLISH script is not in the slow log")


def measure(redis_url: str, total: int) -> dict[str, float]:
    """Stage `total` records, publish them; return the Lua step and settle times."""
    app = app_for(redis_url)
    raw = redis.Redis.from_url(redis_url)
    name = f"publish-{total}"
    with app.app_context():
        lease = stage(app, name, total)
        store = get_store()
        raw.config_set("slowlog-log-slower-than", 0)
        raw.config_set("slowlog-max-len", 1024)
        raw.slowlog_reset()
        started = time.perf_counter()
        verdict = settle_batch(store, name, lease.version)
        settle_ms = (time.perf_counter() - started) * 1000
        sha = raw.script_load(scripts.PUBLISH)
        lua_ms = lua_micros(raw, sha) / 1000
        raw.config_set("slowlog-log-slower-than", 10_000)
    assert verdict == "published", verdict
    return {"records": total, "lua_ms": lua_ms, "settle_ms": settle_ms,
            "member_bytes": len(encode(item(1, 0, 60)))}
