"""Redis cannot fill up by itself, on real processes at the default settings.

A quarantine gate firing every tick keeps one quarantined batch; a batch over its budget
fails before it fills Redis; a page too large for one message travels in parts; DELETE
leaves nothing of a stream, and a stream defined again under its name starts empty.
"""

from __future__ import annotations

import time
from typing import Any

from app.store.keys import StreamKeys
from config import names
from tests.integration.conftest import Api
from tests.support.upstream import Upstream
from tests.support.waiting import wait_for


def catalogue(count: int, label: str) -> list[dict[str, object]]:
    return [{"id": i, "label": label, "n": i * 3} for i in range(1, count + 1)]


def settled(api: Api, name: str, after: int) -> dict[str, Any]:
    """Wait for the newest batch after version `after` to end; return it."""
    return wait_for(lambda: (b := api.batches(name)) and b[0]["version"] > after and
                    b[0]["status"] != "running" and b[0], timeout=30,
                    what=f"a batch after {after} to end")


def test_a_gate_firing_every_tick_keeps_one_quarantined_batch(api: Api, upstream: Upstream,
                                                              name: str) -> None:
    feed = upstream.feed(name, catalogue(20, "full"), page_size=10)
    api.define(name, upstream.url(name))  # the default gate: max_drop_ratio 0.5
    api.start(name, interval_seconds=1)
    first = wait_for(lambda: api.current_version(name), what="first batch")
    feed.records = catalogue(5, "shrunk")  # loses 75 % every tick

    wait_for(lambda: len(api.batches(name)) >= 6, timeout=40, what="five ticks after it")
    api.stop(name)
    # A batch already in flight when the stream stopped still settles (and may discard the
    # quarantined one before it): read the history once nothing runs any more.
    wait_for(lambda: api.status(name)["in_progress"] is None, timeout=30,
             what="the batch in flight to settle")

    keys = StreamKeys("ds", name)
    later = [b for b in api.batches(name) if b["version"] > first and b["status"] != "running"]
    held = [b for b in later if b["status"] == "quarantined"]
    assert len(held) == 1 and held[0] == later[0]
    assert held[0]["quarantine_reason"] == (
        "drop_ratio: 5 records against 20 before (max drop 50%)")
    assert {b["status"] for b in later[1:]} == {"discarded"}
    assert [bool(api.system.redis.exists(keys.records(b["version"]))) for b in later] == (
        [True] + [False] * (len(later) - 1))
    assert api.read_all(name) == (first, catalogue(20, "full"))
    print(f"\nquarantine every tick: {len(later)} batches, 1 quarantined kept, "
          f"{len(later) - 1} discarded with their records gone")


def test_a_batch_over_its_budget_fails_too_large(api: Api, upstream: Upstream,
                                                 name: str) -> None:
    upstream.feed(name, catalogue(20, "small"), page_size=10)
    api.define(name, upstream.url(name), batch_limits={"max_records": 50})
    api.start(name, interval_seconds=3600)
    first = wait_for(lambda: api.current_version(name), what="first batch")
    upstream.feed(name, catalogue(100, "big"), page_size=10)

    api.stop(name)
    api.start(name, interval_seconds=3600)
    failed = settled(api, name, first)
    api.stop(name)

    assert failed["status"] == "failed"
    assert failed["error"] == {"kind": "too_large", "page": 6, "message": (
        "the batch exceeds its budget: max_records 50 (page 6 brings it to 60 records)")}
    assert not api.system.redis.exists(StreamKeys("ds", name).records(failed["version"]))
    assert api.status(name)["in_progress"] is None
    assert api.read_all(name) == (first, catalogue(20, "small"))
    defaults = api.status(name)["definition"]["batch_limits"]
    assert defaults == {"max_records": 50, "max_bytes": 256 * 1024 * 1024}


def test_a_page_too_large_for_one_message_is_stored_whole(api: Api, upstream: Upstream,
                                                          name: str) -> None:
    upstream.feed(name, catalogue(25_000, "wide"), page_size=25_000)  # parts of 10,000
    api.define(name, upstream.url(name))

    api.start(name, interval_seconds=3600)
    version = wait_for(lambda: api.current_version(name), timeout=60, what="the batch")
    api.stop(name)

    batch = api.batches(name)[0]
    assert (batch["version"], batch["status"]) == (version, "complete")
    assert (batch["pages_received"], batch["records"]) == (1, 25_000)
    assert api.read_all(name, limit=10_000)[1] == catalogue(25_000, "wide")


def test_delete_leaves_nothing_and_a_new_stream_of_the_name_starts_empty(
        api: Api, upstream: Upstream, name: str) -> None:
    feed = upstream.feed(name, catalogue(20, "old"), page_size=10)
    api.define(name, upstream.url(name))
    api.start(name, interval_seconds=3600)
    first = wait_for(lambda: api.current_version(name), what="first batch")
    feed.records, feed.delay = catalogue(100, "slow"), 0.2  # 10 pages, 2 s
    api.stop(name)
    api.start(name, interval_seconds=3600)
    wait_for(lambda: (b := api.status(name)["in_progress"]) and b["version"] > first and b,
             what="a batch in flight")
    keys = StreamKeys("ds", name)
    redis = api.system.redis

    assert api.call("DELETE", f"/streams/{name}").status_code == 204

    assert list(redis.scan_iter(keys.pattern)) == []
    assert not redis.exists(f"{{redbeat}}:stream:{name}")
    last = {"hits": feed.hits, "at": time.monotonic()}

    def quiet() -> bool:
        """True once the upstream saw no request for a second and no message waits."""
        if feed.hits != last["hits"]:
            last.update(hits=feed.hits, at=time.monotonic())
        return time.monotonic() - last["at"] >= 1.0 and redis.llen(names.INGEST_QUEUE) == 0

    wait_for(quiet, timeout=15, what="the cancelled fetch to stop and its messages to go")
    assert list(redis.scan_iter(keys.pattern)) == []  # its late messages left nothing
    feed.records, feed.delay = catalogue(10, "new"), 0.0
    api.define(name, upstream.url(name))
    fresh = api.status(name)
    assert (fresh["current_version"], fresh["in_progress"]) == (None, None)
    assert api.batches(name) == []
    assert api.call("GET", f"/streams/{name}/data").json()["error"]["code"] == (
        "no_complete_batch")
    api.start(name, interval_seconds=3600)
    assert wait_for(lambda: api.current_version(name), what="the new stream's batch") == 1
    api.stop(name)
    assert api.read_all(name) == (1, catalogue(10, "new"))
    changes = api.call("GET", f"/streams/{name}/changes", params={"since": 0}).json()
    assert (changes["from"], changes["to"], len(changes["added"])) == (0, 1, 10)
