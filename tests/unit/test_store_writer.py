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
from config import defaults
from config.streams import StreamDefinition
from tests.support.seed import Seeder, digest_buckets

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


def test_failed_batch_is_never_visible_and_its_staging_goes_at_once(
        s: Store, seed: Seeder, redis: fakeredis.FakeRedis) -> None:
    seed.publish("s", [{"id": 1}])
    bad = seed.batch("s")
    bad.page([{"id": 9}])

    bad.fail("timeout", "x")

    bad.complete(pages=1, records=1)
    assert settle_batch(s, "s", bad.version) == "not_running"
    assert served(s) == ['{"id":1}']
    keys = StreamKeys("ds", "s")
    assert not redis.exists(keys.records(bad.version), keys.pages(bad.version))
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
    # Its records went at once, as those of every batch that ends unpublished.
    assert not redis.exists(StreamKeys("ds", "s").records(late.version))


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
    assert s.reader.batch("s", empty.version)["quarantine_reason"].startswith("empty_batch")
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
    assert redis.exists(keys.changes(second)) == 1
    assert redis.ttl(keys.changes(second)) == -1
    assert digest_buckets(redis, keys, second)
    assert {redis.ttl(name) for name in digest_buckets(redis, keys, second)} == {-1}
    assert s.reader.batch("s", second)["changes"]["added"] == 1


def test_change_sets_outside_the_change_history_expire(app: Flask, redis: fakeredis.FakeRedis
                                                       ) -> None:
    app.extensions["store"] = build_store(redis, {**app.config, "CHANGE_HISTORY": 2})
    define(app.extensions["store"])
    versions = [Seeder(app).publish("s", [{"id": n}]) for n in range(4)]

    ttls = [redis.ttl(StreamKeys("ds", "s").changes(v)) for v in versions]
    assert ttls[-2:] == [-1, -1]
    assert all(0 < ttl <= 600 for ttl in ttls[:2])


def test_a_newer_quarantined_batch_discards_the_older_one(s: Store, seed: Seeder,
                                                          redis: fakeredis.FakeRedis) -> None:
    seed.publish("s", [{"id": n} for n in range(10)])
    held = [seed.send("s", [{"id": 1}]).version for _ in range(3)]  # each loses 90 %

    keys = StreamKeys("ds", "s")
    assert [seed.status("s", v) for v in held] == ["discarded", "discarded", "quarantined"]
    assert [bool(redis.exists(keys.records(v))) for v in held] == [False, False, True]
    older = s.reader.batch("s", held[0])
    assert older["error"]["message"] == f"batch {held[1]} was quarantined after it"
    assert s.writer.publish_quarantined("s", held[2]) == "published"


def test_a_quarantined_batch_older_than_the_published_one_is_discarded(
        s: Store, seed: Seeder, redis: fakeredis.FakeRedis) -> None:
    seed.publish("s", [{"id": n} for n in range(10)])
    held = seed.send("s", []).version

    newer = seed.publish("s", [{"id": n} for n in range(10)])

    assert seed.status("s", held) == "discarded"
    assert not redis.exists(StreamKeys("ds", "s").records(held))
    assert s.reader.batch("s", held)["error"]["message"] == (
        f"version {newer} was published after it")


def test_history_is_trimmed_whenever_a_batch_ends(app: Flask, redis: fakeredis.FakeRedis
                                                  ) -> None:
    app.extensions["store"] = store = build_store(redis, {**app.config, "HISTORY_LENGTH": 3})
    define(store)
    seed = Seeder(app)
    current = seed.publish("s", [{"id": 1}])
    failed = []
    for _ in range(6):  # a stream that fails every tick
        batch = seed.batch("s")
        batch.page([{"id": 2}])
        batch.fail()
        failed.append(batch.version)

    keys = StreamKeys("ds", "s")
    assert [int(v) for v in redis.zrevrange(keys.batches, 0, -1)] == [*failed[:-4:-1], current]
    assert all(0 < redis.ttl(keys.batch(v)) <= 600 for v in failed[:3])
    assert redis.ttl(keys.batch(current)) == -1
    assert served(store) == ['{"id":1}']


def test_a_batch_over_its_record_budget_fails_too_large(store: Store, seed: Seeder,
                                                        redis: fakeredis.FakeRedis) -> None:
    define(store, batch_limits={"max_records": 5})
    batch = seed.batch("s")
    batch.page([{"id": 1}, {"id": 2}])
    batch.page([{"id": 3}, {"id": 4}])

    batch.page([{"id": 5}, {"id": 6}])

    failed = store.reader.batch("s", batch.version)
    assert failed["status"] == "failed"
    assert failed["error"] == {"kind": "too_large", "page": 3, "message": (
        "the batch exceeds its budget: max_records 5 (page 3 brings it to 6 records)")}
    assert not redis.exists(StreamKeys("ds", "s").records(batch.version))
    assert store.locks.holder("s") is None
    batch.page([{"id": 7}])  # what the fetch still sends adds nothing
    assert store.reader.batch("s", batch.version)["pages_received"] == 2


def test_a_batch_over_its_byte_budget_fails_too_large(store: Store, seed: Seeder) -> None:
    define(store, batch_limits={"max_bytes": 1000})
    batch = seed.batch("s")
    batch.page([{"id": n, "text": "x" * 100} for n in range(5)])  # about 600 bytes of JSON

    batch.page([{"id": n, "text": "x" * 100} for n in range(5, 10)])

    error = store.reader.batch("s", batch.version)["error"]
    assert error["kind"] == "too_large" and "max_bytes 1000 (page 2 brings it to" in (
        error["message"])


def test_budgets_and_the_drop_gate_have_documented_defaults() -> None:
    definition = StreamDefinition.model_validate({"source": {"url": "http://127.0.0.1:1/x"}})

    assert definition.batch_limits.max_records == defaults.BATCH_MAX_RECORDS == 1_000_000
    assert definition.batch_limits.max_bytes == defaults.BATCH_MAX_BYTES == 256 * 1024 * 1024
    assert definition.publish_gate.max_drop_ratio == defaults.MAX_DROP_RATIO == 0.5
    off = StreamDefinition.model_validate({"source": {"url": "http://127.0.0.1:1/x"},
                                           "publish_gate": {"max_drop_ratio": None}})
    assert off.publish_gate.max_drop_ratio is None


def test_the_drop_gate_protects_by_default_and_can_be_turned_off(store: Store,
                                                                 seed: Seeder) -> None:
    define(store)
    seed.publish("s", [{"id": n} for n in range(10)])
    assert seed.status("s", seed.send("s", [{"id": n} for n in range(5)]).version) == "complete"
    shrunk = seed.send("s", [{"id": 1}, {"id": 2}])  # 5 -> 2: loses 60 %
    assert store.reader.batch("s", shrunk.version)["quarantine_reason"] == (
        "drop_ratio: 2 records against 5 before (max drop 50%)")

    define(store, publish_gate={"max_drop_ratio": None})
    assert seed.status("s", seed.send("s", [{"id": 1}]).version) == "complete"
