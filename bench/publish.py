"""Settle cost: from the last page stored to published, for a batch of N records of which
about 1% changed against the published version, with the change set staged by the pages
(ours now) and by a walk over the whole batch (the baseline: how every batch settled before).

Each stream gets three versions of N demo records; the third is measured, the steady state
(the second may choose its digest buckets anew, see `app.store.digests`): against the one
before, 0.8% of its records changed, 0.1% are new, 0.1% gone and 0.1% back. All are sent
as the worker sends them (tests/support/seed.py: the Outbox's messages, run by the ingest
tasks), all but their totals; the totals are recorded with the writer, then
`publish.settle` runs as the ingest consumer runs it after them, timed around the call.
The walked stream's pages carry no keys (as a worker of before sends them). The PUBLISH
Lua step's own time comes from Redis' SLOWLOG (threshold 0), so it excludes the client's
round trip.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import redis
from flask import Flask

from app import create_app
from app.extensions import get_store
from app.publish import settle as settle_batch
from app.records import encode
from app.store import scripts
from app.store.locks import BatchLease
from bench import memory
from config.streams import StreamDefinition
from demo import item
from tests.support.seed import Seeder

CHUNK = 1000
UPDATED, ADDED, REMOVED = 0.008, 0.001, 0.001


def app_for(redis_url: str) -> Flask:
    """Return a data-streams app talking to the benchmark's Redis."""
    return create_app({"REDIS_URL": redis_url})


def version(total: int, round_: int) -> Iterator[dict[str, Any]]:
    """Yield version `round_` (0: the first): against the one before, 0.8% of the records
    changed, 0.1% are gone (and those gone before are back), 0.1% are new."""
    updated, removed = int(1 / UPDATED), int(1 / REMOVED)
    for i in range(1, total + 1):
        if round_ and i % removed == round_ % removed:
            continue
        yield item(i, 1 if 0 < i % updated <= round_ else 0, 60)
    yield from (item(total + i, 0, 60) for i in range(1, int(total * ADDED * round_) + 1))


def stage(app: Flask, name: str, records: Iterator[dict[str, Any]], keyed: bool
          ) -> BatchLease:
    """Send a whole batch of `records` but its totals' settle; return its lease."""
    store = get_store()
    batch = Seeder(app).batch(name)
    if not keyed:
        batch.outbox.keyer = None
    page: list[dict[str, Any]] = []
    sent = 0
    for record in records:
        page.append(record)
        if len(page) == CHUNK:
            batch.page(page)
            sent, page = sent + len(page), []
    if page or not sent:
        batch.page(page)
        sent += len(page)
    store.writer.complete(batch.lease, len(batch.sizes), sent, {})
    return batch.lease


def settle(name: str, lease: BatchLease) -> float:
    """Settle a staged batch; return the seconds it took."""
    started = time.perf_counter()
    verdict = settle_batch(get_store(), name, lease.version)
    assert verdict == "published", verdict
    return time.perf_counter() - started


def lua_micros(connection: redis.Redis, sha: str) -> int:
    """Return the duration of the last run of script `sha` in the slow log, in µs."""
    for entry in connection.slowlog_get(200_000):
        words = bytes(entry["command"]).split()
        if len(words) > 1 and words[0].upper() == b"EVALSHA" and words[1] == sha.encode():
            return int(entry["duration"])
    raise LookupError("the PUBLISH script is not in the slow log")


def measure(redis_url: str, total: int) -> dict[str, float]:
    """Return the settle seconds of a 1%-changed batch of `total`, paged and walked."""
    app = app_for(redis_url)
    raw = redis.Redis.from_url(redis_url)
    out: dict[str, float] = {"records": total, "member_bytes": len(encode(item(1, 0, 60)))}
    with app.app_context():
        for how in ("walked", "paged"):
            name = f"publish-{how}-{total}"
            get_store().definitions.put(name, StreamDefinition.model_validate(
                {"source": {"url": "http://127.0.0.1:9/items"},
                 "publish_gate": {"allow_empty": True},
                 "batch_limits": {"max_records": 2 * total, "max_bytes": 1024 * total}}))
            keyed = how == "paged"
            out[f"{how}_first_s"] = settle(name, stage(app, name, version(total, 0), keyed))
            out[f"{how}_second_s"] = settle(name, stage(app, name, version(total, 1), keyed))
            lease = stage(app, name, version(total, 2), keyed)
            raw.config_set("slowlog-log-slower-than", 0)
            raw.config_set("slowlog-max-len", 200_000)
            raw.slowlog_reset()
            out[f"{how}_s"] = settle(name, lease)
            out[f"{how}_lua_ms"] = lua_micros(raw, raw.script_load(scripts.PUBLISH)) / 1000
            raw.config_set("slowlog-log-slower-than", 10_000)
            changes = get_store().reader.batch(name, lease.version)["changes"]
            out["changed"] = changes["added"] + changes["updated"] + changes["removed"]
            text = redis.Redis.from_url(redis_url, decode_responses=True)
            out[f"{how}_memory_ratio"] = memory.measure(text, name)["all_ratio"]
    out["ratio"] = out["paged_s"] / out["walked_s"]
    return out
