"""Incremental cost: 1,000 changes merged onto N records, against a full batch of N.

Both batches go the worker's way into the store (tests/support/seed.py: the Outbox's
messages run by the ingest tasks in this process), then `publish.settle` runs as the
ingest consumer runs it. The full batch stages N records and settles them (change set,
gates, PUBLISH, and the record index an incremental stream needs); the incremental one
stages 1,000 changes (800 updates, 150 new records, 50 tombstones) and settles them
(merge: read the changes, copy the base server-side in bounded steps, fix, PUBLISH).
Redis' SLOWLOG (threshold 0) gives the longest single command of each settle. Each
settle starts once no AOF rewrite runs, so a forked child's copy-on-write is not counted.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from typing import Any

import orjson
import redis
from flask import Flask

from app import create_app
from app.extensions import get_store
from app.publish import settle
from app.records import PAGE_STRIDE, encode, to_entries
from app.store.incremental import TOMBSTONE
from app.store.keys import StreamKeys
from config.incremental import fingerprint
from config.streams import StreamDefinition
from demo import item
from tests.support.seed import Seeder

CHUNK = 1000
DEFINITION = {"source": {"url": "http://127.0.0.1:9/items",
                         "incremental": {"cursor_path": "updated_at",
                                         "param": "updated_since"}},
              "publish_gate": {"allow_empty": True}}


def changes(total: int, count: int) -> list[tuple[float, str]]:
    """Return the staged entries of `count` changes spread over `total` records."""
    step = max(total // count, 1)
    updated = [item(i, 1, 60) for i in range(1, total + 1, step)][:count * 80 // 100]
    added = [item(total + i, 1, 60) for i in range(1, count * 15 // 100 + 1)]
    deleted = [TOMBSTONE + str(i) for i in range(2, total + 1, step)][:count * 5 // 100]
    members = [encode(record) for record in updated + added] + deleted
    return [(float(PAGE_STRIDE + i), member) for i, member in enumerate(members)]


def _slowest(raw: redis.Redis) -> tuple[float, str]:
    """Return the longest command in the slow log (ms) and its name."""
    entries: Any = raw.slowlog_get(100_000)
    if not entries:
        return 0.0, ""
    worst = max(entries, key=lambda entry: entry["duration"])
    return worst["duration"] / 1000, bytes(worst["command"]).split(b" ")[0].decode()


def _cpu(raw: redis.Redis) -> float:
    """Return the CPU seconds the Redis server has used so far (user + system)."""
    info: Any = raw.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def _quiet_aof(raw: redis.Redis, timeout: float = 300.0) -> None:
    """Wait until no AOF rewrite runs: a forked child's copy-on-write would be counted."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info: Any = raw.info("persistence")
        if not info["aof_rewrite_in_progress"] and not info["aof_rewrite_scheduled"]:
            return
        time.sleep(0.2)
    raise TimeoutError("an AOF rewrite did not end")


def _timed_settle(raw: redis.Redis, name: str, version: int) -> dict[str, Any]:
    """Settle a whole batch with the slow log on; return verdict, times, slowest command."""
    _quiet_aof(raw)
    raw.config_set("slowlog-log-slower-than", 0)
    raw.config_set("slowlog-max-len", 100_000)
    raw.slowlog_reset()
    cpu, started = _cpu(raw), time.perf_counter()
    verdict = settle(get_store(), name, version)
    seconds, cpu = time.perf_counter() - started, _cpu(raw) - cpu
    slowest_ms, command = _slowest(raw)
    raw.config_set("slowlog-log-slower-than", 10_000)
    return {"verdict": verdict, "seconds": seconds, "redis_cpu_s": cpu,
            "slowest_ms": slowest_ms, "slowest": command}


def _batch(app: Flask, raw: redis.Redis, name: str, pages: Iterable[list[Any]],
           info: dict[str, Any]) -> tuple[float, dict[str, Any], int]:
    """Stage a batch of packed `pages` and settle it; return staging s, settle, version."""
    started = time.perf_counter()
    batch = Seeder(app).batch(name)
    for number, entries in enumerate(pages, start=1):
        batch.outbox.page(number, entries)
        batch.sizes[number] = len(entries)
    get_store().writer.complete(batch.lease, len(batch.sizes), sum(batch.sizes.values()),
                                {key: value if isinstance(value, str)
                                 else orjson.dumps(value).decode() for key, value in info.items()})
    staged = time.perf_counter() - started
    settled = _timed_settle(raw, name, batch.version)
    assert settled["verdict"] == "published", settled
    return staged, settled, batch.version


def measure(redis_url: str, total: int, changed: int = 1000) -> dict[str, Any]:
    """Publish a full batch of `total` records, then `changed` changes; time both."""
    app = create_app({"REDIS_URL": redis_url})
    raw = redis.Redis.from_url(redis_url)
    name = f"incremental-{total}"
    with app.app_context():
        store = get_store()
        definition = StreamDefinition.model_validate(DEFINITION)
        store.definitions.put(name, definition)
        state = {"cursor": "2026-01-01T00:00:00Z", "fingerprint": fingerprint(definition)}
        pages = (to_entries([item(i, 0, 60) for i in range(start + 1, min(total, start + CHUNK)
                                                           + 1)], start // CHUNK + 1, None)
                 for start in range(0, total, CHUNK))
        staged, full, base = _batch(app, raw, name, pages,
                                    {"incremental": {**state, "mode": "full"}})
        full_batch = staged + full["seconds"]  # not the wait for an AOF rewrite
        entries = changes(total, changed)
        staged, inc, version = _batch(app, raw, name, [entries], {
            "base": str(base), "incremental": {**state, "mode": "incremental"}})
        inc_batch = staged + inc["seconds"]
        merged = store.reader.batch(name, version)
        index_bytes = raw.memory_usage(StreamKeys(store.prefix, name).index, samples=0) or 0
    expected = total + changed * 15 // 100 - changed * 5 // 100
    assert merged["records"] == expected, (merged["records"], expected)
    return {"records": total, "changes": len(entries), "full_batch_s": full_batch,
            "full_settle_s": full["seconds"], "inc_batch_s": inc_batch,
            "inc_settle_s": inc["seconds"], "batch_ratio": inc_batch / full_batch,
            "settle_ratio": inc["seconds"] / full["seconds"],
            "full_redis_cpu_s": full["redis_cpu_s"], "inc_redis_cpu_s": inc["redis_cpu_s"],
            "full_slowest_ms": full["slowest_ms"], "full_slowest": full["slowest"],
            "inc_slowest_ms": inc["slowest_ms"], "inc_slowest": inc["slowest"],
            "index_bytes_per_record": index_bytes / expected, "load": os.getloadavg()[0]}
