"""The batch lifecycle on fakeredis: staging, idempotent pages, fenced publish, retention."""

from __future__ import annotations

import fakeredis
import pytest
from flask import Flask

from app.extensions import Store
from app.publish import settle as settle_batch
from app.store import build_store
from app.store.keys import StreamKeys
from app.store.locks import BatchLease
from config.streams import StreamDefinition
from tests.support.seed import Seeder

LOCK = StreamKeys("ds", "s").lock


def define(store: Store, name: str = "s", **fields: object) -> None:
    store.definitions.put(name, StreamDefinition.model_validate(
        {"source": {"url": "http://127.0.0.1:1/x"}, **fields}))


def served(store: Store, name: str = "s") -> list[str]:
    return store.reader.read(name, limit=1000).records


@pytest.fixture
def s(store: Store) -> Store:
    define(store)
    return store


def test_whole_batch_publishes_in_one_step(s: Store, seed: Seeder) -> None:
    batch = seed.send("s", [{"id": 1}, {"id": 2}, {"id": 3}], page_size=2)

    assert s.reader.current_version("s") == batch.version
    assert served(s) == ['{"id":1}', '{"id":2}', '{"id":3}']
    published = s.reader.batch("s", batch.version)
    assert published["status"] == "complete" and published["records"] == 3
    assert s.locks.holder("s") is None


def test_batch_waits_for_missing_pages_in_any_order(s: Store, seed: Seeder) -> None:
    batch = seed.batch("s")
    batch.complete(pages=3, records=3)
    batch.page([{"id": 3}], number=3)
    batch.page([{"id": 1}], number=1)

    assert settle_batch(s, "s", batch.version) == "waiting"
    assert s.reader.current_version("s") is None
    batch.page([{"id": 2}], number=2)
    assert s.reader.current_version("s") == batch.version
    assert served(s) == ['{"id":1}', '{"id":2}', '{"id":3}']


def test_redelivered_page_adds_nothing(s: Store, seed: Seeder) -> None:
    batch = seed.batch("s")
    batch.page([{"id": 1}])
    batch.page([{"id": 2}])

    batch.page([{"id": 2}], number=2)

    running = s.reader.batch("s", batch.version)
    assert (running["pages_received"], running["records_received"]) == (2, 2)


def test_second_batch_replaces_first_and_first_stays_readable(s: Store, seed: Seeder) -> None:
    first = seed.publish("s", [{"id": 1}])
    second = seed.publish("s", [{"id": 2}])

    assert served(s) == ['{"id":2}']
    assert s.reader.read("s", limit=10, version=first).records == ['{"id":1}']
    assert s.reader.batch("s", second)["previous"] == first


def test_failed_batch_is_never_visible_and_its_staging_expires(
        s: Store, seed: Seeder, redis: fakeredis.FakeRedis) -> None:
    seed.publish("s", [{"id": 1}])
    bad = seed.batch("s")
    bad.page([{"id": 9}])

    bad.fail("timeout", "x")

    bad.complete(pages=1, records=1)
    assert settle_batch(s, "s", bad.version) == "not_running"
    assert served(s) == ['{"id":1}']
    assert 0 < redis.ttl(StreamKeys("ds", "s").records(bad.version)) <= 600
    failed = s.reader.batch("s", bad.version)
    assert failed["status"] == "failed"
    assert failed["error"] == {"kind": "timeout", "message": "x"}
    bad.page([{"id": 10}], number=2)
    assert s.reader.batch("s", bad.version)["pages_received"] == 1


def test_a_batch_whose_lease_lapsed_is_abandoned_when_another_takes_over(
        s: Store, seed: Seeder, redis: fakeredis.FakeRedis) -> None:
    late = seed.batch("s")
    late.page([{"id": 1}])
    redis.delete(LOCK)  # as a lease lapses when its worker dies
    newer = s.locks.acquire_once("s", "a-newer-fetch")  # its begin has not arrived yet
    assert isinstance(newer, BatchLease) and newer.version > late.version
    assert newer.took_over == late.version

    late.complete()

    assert s.reader.current_version("s") is None
    abandoned = s.reader.batch("s", late.version)
    assert abandoned["status"] == "abandoned" and abandoned["error"]["kind"] == "worker_lost"
    assert 0 < redis.ttl(StreamKeys("ds", "s").records(late.version)) <= 600


def test_an_older_batch_never_publishes_over_a_newer_one(
        s: Store, seed: Seeder, redis: fakeredis.FakeRedis) -> None:
    old = seed.batch("s")
    old.page([{"id": 1}])
    redis.delete(LOCK)
    new = seed.publish("s", [{"id": 2}])

    old.complete()

    assert settle_batch(s, "s", old.version) == "not_running"
    assert s.reader.batch("s", old.version)["status"] == "abandoned"
    assert s.reader.current_version("s") == new


def test_beginning_a_batch_abandons_older_running_ones(
        s: Store, seed: Seeder, redis: fakeredis.FakeRedis) -> None:
    orphan = seed.batch("s")
    orphan.page([{"id": 1}])
    redis.delete(LOCK)

    seed.batch("s").page([{"id": 2}])

    assert s.reader.batch("s", orphan.version)["status"] == "abandoned"


def test_only_the_newest_versions_stay_readable(s: Store, seed: Seeder,
                                                redis: fakeredis.FakeRedis) -> None:
    versions = [seed.publish("s", [{"id": n}]) for n in range(5)]

    keys = StreamKeys("ds", "s")
    ttls = [redis.ttl(keys.records(v)) for v in versions]
    assert ttls[-3:] == [-1, -1, -1]
    assert all(0 < ttl <= 600 for ttl in ttls[:2])


def test_empty_batch_is_quarantined_then_published_by_hand(s: Store, seed: Seeder) -> None:
    seed.publish("s", [{"id": 1}])

    empty = seed.send("s", [])

    assert seed.status("s", empty.version) == "quarantined"
    assert served(s) == ['{"id":1}']
    assert s.reader.batch("s", empty.version)["quarantine_reason"] == "empty_batch"
    assert s.writer.publish_quarantined("s", empty.version) == "published"
    assert s.reader.current_version("s") == empty.version
    assert served(s) == []


def test_drop_ratio_gate_quarantines_a_shrunken_batch(store: Store, seed: Seeder) -> None:
    define(store, publish_gate={"max_drop_ratio": 0.5})
    full = seed.publish("s", [{"id": i} for i in range(10)])

    shrunk = seed.send("s", [{"id": 1}, {"id": 2}])

    assert seed.status("s", shrunk.version) == "quarantined"
    assert store.writer.discard("s", shrunk.version) == "discarded"
    assert store.writer.publish_quarantined("s", shrunk.version) == "not_quarantined"
    assert store.reader.current_version("s") == full


def test_publish_makes_the_change_set_permanent_in_the_same_step(
        s: Store, seed: Seeder, redis: fakeredis.FakeRedis) -> None:
    seed.publish("s", [{"id": 1}, {"id": 2}])

    second = seed.publish("s", [{"id": 2}, {"id": 3}])

    keys = StreamKeys("ds", "s")
    assert redis.exists(keys.changes(second), keys.digests(second)) == 2
    assert redis.ttl(keys.changes(second)) == -1
    assert redis.ttl(keys.digests(second)) == -1
    assert s.reader.batch("s", second)["changes"]["added"] == 1


def test_change_sets_outside_the_change_history_expire(app: Flask, redis: fakeredis.FakeRedis
                                                       ) -> None:
    app.extensions["store"] = build_store(redis, {**app.config, "CHANGE_HISTORY": 2})
    define(app.extensions["store"])
    versions = [Seeder(app).publish("s", [{"id": n}]) for n in range(4)]

    ttls = [redis.ttl(StreamKeys("ds", "s").changes(v)) for v in versions]
    assert ttls[-2:] == [-1, -1]
    assert all(0 < ttl <= 600 for ttl in ttls[:2])
