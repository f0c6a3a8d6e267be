"""The batch lifecycle on fakeredis: staging, idempotent pages, fenced publish, retention."""

from __future__ import annotations

from dataclasses import replace

import fakeredis
import pytest

from app.extensions import Store
from app.publish import settle as settle_batch
from app.records import to_entries
from app.store.keys import StreamKeys
from app.store.locks import BatchLease
from app.store.writer import BatchWriter
from config.streams import StreamDefinition


def define(store: Store, name: str = "s", **fields: object) -> None:
    store.definitions.put(name, StreamDefinition.model_validate(
        {"source": {"url": "http://127.0.0.1:1/x"}, **fields}))


def run_batch(store: Store, pages: list[list[dict[str, int]]], name: str = "s",
              complete: bool = True) -> BatchLease:
    lease = store.locks.acquire(name)
    assert lease is not None
    store.writer.begin(lease)
    for number, records in enumerate(pages, start=1):
        store.writer.store_page(lease, number, to_entries(records, number, None))
    if complete:
        store.writer.complete(lease, len(pages), sum(map(len, pages)))
    return lease


def served(store: Store, name: str = "s") -> list[str]:
    return store.reader.read(name, limit=1000).records


@pytest.fixture
def s(store: Store) -> Store:
    define(store)
    return store


def test_whole_batch_publishes_in_one_step(s: Store) -> None:
    lease = run_batch(s, [[{"id": 1}, {"id": 2}], [{"id": 3}]])

    assert settle_batch(s, "s", lease.version) == "published"
    assert s.reader.current_version("s") == lease.version
    assert served(s) == ['{"id":1}', '{"id":2}', '{"id":3}']
    batch = s.reader.batch("s", lease.version)
    assert batch["status"] == "complete" and batch["records"] == 3
    assert s.locks.holder("s") is None


def test_batch_waits_for_missing_pages_in_any_order(s: Store) -> None:
    lease = s.locks.acquire("s")
    assert lease is not None
    s.writer.complete(lease, 3, 3)
    s.writer.store_page(lease, 3, to_entries([{"id": 3}], 3, None))
    s.writer.store_page(lease, 1, to_entries([{"id": 1}], 1, None))

    assert settle_batch(s, "s", lease.version) == "waiting"
    assert s.reader.current_version("s") is None
    s.writer.store_page(lease, 2, to_entries([{"id": 2}], 2, None))
    assert settle_batch(s, "s", lease.version) == "published"
    assert served(s) == ['{"id":1}', '{"id":2}', '{"id":3}']


def test_redelivered_page_adds_nothing(s: Store) -> None:
    lease = run_batch(s, [[{"id": 1}], [{"id": 2}]], complete=False)

    again = s.writer.store_page(lease, 2, to_entries([{"id": 2}], 2, None))

    assert again is False
    batch = s.reader.batch("s", lease.version)
    assert (batch["pages_received"], batch["records_received"]) == (2, 2)


def test_second_batch_replaces_first_and_first_stays_readable(s: Store) -> None:
    first = run_batch(s, [[{"id": 1}]])
    settle_batch(s, "s", first.version)
    second = run_batch(s, [[{"id": 2}]])

    assert settle_batch(s, "s", second.version) == "published"
    assert served(s) == ['{"id":2}']
    assert s.reader.read("s", limit=10, version=first.version).records == ['{"id":1}']
    assert s.reader.batch("s", second.version)["previous"] == first.version


def test_failed_batch_is_never_visible_and_its_staging_expires(s: Store, redis: fakeredis.FakeRedis
                                                              ) -> None:
    good = run_batch(s, [[{"id": 1}]])
    settle_batch(s, "s", good.version)
    bad = run_batch(s, [[{"id": 9}]], complete=False)

    s.writer.finish("s", bad.version, "failed", {"kind": "timeout"})

    assert s.writer.complete(bad, 1, 1) == "failed"
    assert settle_batch(s, "s", bad.version) == "not_running"
    assert served(s) == ['{"id":1}']
    assert 0 < redis.ttl(StreamKeys("ds", "s").records(bad.version)) <= 600
    assert s.reader.batch("s", bad.version)["error"] == {"kind": "timeout"}
    assert not s.writer.store_page(bad, 2, to_entries([{"id": 10}], 2, None))


def test_a_batch_whose_lock_another_batch_holds_is_superseded(s: Store,
                                                             redis: fakeredis.FakeRedis) -> None:
    late = run_batch(s, [[{"id": 1}]], complete=False)
    redis.delete(StreamKeys("ds", "s").lock)
    newer = s.locks.acquire("s")
    assert newer is not None and newer.version > late.version
    s.writer.complete(late, 1, 1)

    assert settle_batch(s, "s", late.version) == "superseded"
    assert s.reader.current_version("s") is None
    assert s.reader.batch("s", late.version)["status"] == "abandoned"


def test_an_older_batch_never_publishes_over_a_newer_one(s: Store,
                                                         redis: fakeredis.FakeRedis) -> None:
    old = run_batch(s, [[{"id": 1}]], complete=False)
    redis.delete(StreamKeys("ds", "s").lock)
    new = run_batch(s, [[{"id": 2}]])
    settle_batch(s, "s", new.version)
    s.writer.complete(old, 1, 1)

    assert settle_batch(s, "s", old.version) == "not_running"
    assert s.reader.batch("s", old.version)["status"] == "abandoned"
    assert s.reader.current_version("s") == new.version


def test_beginning_a_batch_abandons_older_running_ones(s: Store,
                                                       redis: fakeredis.FakeRedis) -> None:
    orphan = run_batch(s, [[{"id": 1}]], complete=False)
    redis.delete(StreamKeys("ds", "s").lock)

    run_batch(s, [[{"id": 2}]], complete=False)

    assert s.reader.batch("s", orphan.version)["status"] == "abandoned"


def test_only_the_newest_versions_stay_readable(store: Store, redis: fakeredis.FakeRedis
                                                ) -> None:
    define(store)
    versions = []
    for n in range(5):
        lease = run_batch(store, [[{"id": n}]])
        settle_batch(store, "s", lease.version)
        versions.append(lease.version)

    keys = StreamKeys("ds", "s")
    ttls = [redis.ttl(keys.records(v)) for v in versions]
    assert ttls[-3:] == [-1, -1, -1]
    assert all(0 < ttl <= 600 for ttl in ttls[:2])


def test_empty_batch_is_quarantined_then_published_by_hand(s: Store) -> None:
    good = run_batch(s, [[{"id": 1}]])
    settle_batch(s, "s", good.version)
    empty = run_batch(s, [[]])

    assert settle_batch(s, "s", empty.version) == "quarantined"
    assert served(s) == ['{"id":1}']
    assert s.reader.batch("s", empty.version)["quarantine_reason"] == "empty_batch"
    assert s.writer.publish_quarantined("s", empty.version) == "published"
    assert s.reader.current_version("s") == empty.version
    assert served(s) == []


def test_drop_ratio_gate_quarantines_a_shrunken_batch(store: Store) -> None:
    define(store, publish_gate={"max_drop_ratio": 0.5})
    full = run_batch(store, [[{"id": i} for i in range(10)]])
    settle_batch(store, "s", full.version)
    shrunk = run_batch(store, [[{"id": 1}, {"id": 2}]])

    assert settle_batch(store, "s", shrunk.version) == "quarantined"
    assert store.writer.discard("s", shrunk.version) == "discarded"
    assert store.writer.publish_quarantined("s", shrunk.version) == "not_quarantined"
    assert store.reader.current_version("s") == full.version


def test_publish_makes_the_change_set_permanent_in_the_same_step(
        s: Store, redis: fakeredis.FakeRedis) -> None:
    first = run_batch(s, [[{"id": 1}, {"id": 2}]])
    settle_batch(s, "s", first.version)
    second = run_batch(s, [[{"id": 2}, {"id": 3}]])

    assert settle_batch(s, "s", second.version) == "published"

    keys = StreamKeys("ds", "s")
    assert redis.exists(keys.changes(second.version), keys.digests(second.version)) == 2
    assert redis.ttl(keys.changes(second.version)) == -1
    assert redis.ttl(keys.digests(second.version)) == -1
    assert s.reader.batch("s", second.version)["changes"]["added"] == 1


def test_change_sets_outside_the_change_history_expire(store: Store,
                                                       redis: fakeredis.FakeRedis) -> None:
    define(store)
    short = replace(store, writer=BatchWriter(
        redis, "ds", replace(store.writer.retention, change_history=2)))
    versions = []
    for n in range(4):
        lease = run_batch(short, [[{"id": n}]])
        assert settle_batch(short, "s", lease.version) == "published"
        versions.append(lease.version)

    ttls = [redis.ttl(StreamKeys("ds", "s").changes(v)) for v in versions]
    assert ttls[-2:] == [-1, -1]
    assert all(0 < ttl <= 600 for ttl in ttls[:2])
