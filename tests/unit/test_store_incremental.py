"""The merge of incremental batches in the store: positions, order, last change wins,
the record index, two consumers at once, a base that moved (fakeredis, through the
ingest tasks as the worker sends them)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from app.extensions import Store
from app.publish import settle
from app.records import PAGE_STRIDE, encode
from app.store import incremental
from app.store.incremental import TOMBSTONE
from app.store.keys import StreamKeys
from config.incremental import fingerprint
from config.streams import StreamDefinition
from tests.support.seed import Batch, Seeder

Change = dict[str, Any] | tuple[str, Any]


def define(store: Store, **fields: Any) -> StreamDefinition:
    definition = StreamDefinition.model_validate({
        "source": {"url": "http://127.0.0.1:9/items",
                   "incremental": {"cursor_path": "t", "param": "since"}},
        "publish_gate": {"allow_empty": True}, **fields})
    store.definitions.put("s", definition)
    return definition


def state(store: Store, mode: str) -> dict[str, Any]:
    definition = store.definitions.get("s")
    return {"mode": mode, "cursor": 1, "fingerprint": fingerprint(definition)}


def full(seed: Seeder, store: Store, records: list[Any], order_by: str | None = None) -> int:
    return seed.publish("s", records, info={"incremental": state(store, "full")},
                        order_by=order_by)


def changes(seed: Seeder, store: Store, base: int, *pages: list[Change],
            complete: bool = True) -> Batch:
    """Send an incremental batch: records upserted, ("delete", key) tombstones."""
    batch = seed.batch("s")
    for number, page in enumerate(pages, start=1):
        entries = [(float(number * PAGE_STRIDE + i),
                    TOMBSTONE + encode(item[1]) if isinstance(item, tuple) else encode(item))
                   for i, item in enumerate(page)]
        batch.outbox.page(number, entries)
        batch.sizes[number] = len(entries)
    if complete:
        batch.complete({"base": str(base), "incremental": state(store, "incremental")})
    return batch


def served(store: Store) -> list[Any]:
    return [orjson.loads(member) for member in store.reader.read("s", limit=100).records]


def test_an_update_keeps_its_place_new_records_go_last_deletes_go(
        seed: Seeder, store: Store) -> None:
    define(store)
    v1 = full(seed, store, [{"id": i, "v": 0} for i in range(1, 6)])

    batch = changes(seed, store, v1, [{"id": 3, "v": 1}, {"id": 9, "v": 1}, ("delete", 2)],
                    [{"id": 7, "v": 1}, {"id": 4, "v": 0}])

    assert seed.status("s", batch.version) == "complete"
    assert served(store) == [{"id": 1, "v": 0}, {"id": 3, "v": 1}, {"id": 4, "v": 0},
                             {"id": 5, "v": 0}, {"id": 9, "v": 1}, {"id": 7, "v": 1}]
    meta = store.reader.batch("s", batch.version)
    assert meta["changes"] == {"from": v1, "added": 2, "updated": 1, "removed": 1}
    assert meta["duplicates_dropped"] == 0
    assert (meta["records"], meta["previous"], meta["base"]) == (6, v1, v1)
    keys = StreamKeys(store.prefix, "s")
    assert int(store.connection.hget(keys.batch(batch.version), "records_stored")) == 6
    assert store.record_index.version("s") == str(batch.version)


def test_the_last_change_of_a_key_wins(seed: Seeder, store: Store) -> None:
    define(store)
    v1 = full(seed, store, [{"id": 1}, {"id": 2}])

    changes(seed, store, v1, [{"id": 1, "v": "a"}, ("delete", 2)],
            [("delete", 1), {"id": 2, "v": "back"}, {"id": 3}, {"id": 3, "v": "last"}])

    assert served(store) == [{"id": 2, "v": "back"}, {"id": 3, "v": "last"}]


def test_a_stream_with_order_by_orders_the_merged_version(seed: Seeder, store: Store) -> None:
    define(store, order_by="t")
    v1 = full(seed, store, [{"id": i, "t": i * 10} for i in range(1, 4)], order_by="t")

    changes(seed, store, v1, [{"id": 1, "t": 25}, {"id": 4, "t": 5}])

    assert [record["id"] for record in served(store)] == [4, 2, 1, 3]


def test_no_change_ends_unchanged_and_copies_nothing(seed: Seeder, store: Store) -> None:
    define(store)
    v1 = full(seed, store, [{"id": 1}, {"id": 2}])

    batch = changes(seed, store, v1, [{"id": 2}, ("delete", 5)])

    meta = store.reader.batch("s", batch.version)
    assert meta["status"] == "unchanged" and meta["error"]["kind"] == "unchanged"
    assert store.reader.current_version("s") == v1
    keys = StreamKeys(store.prefix, "s")
    assert not store.connection.exists(keys.records(batch.version))
    assert store.locks.holder("s") is None


def test_a_base_that_is_no_longer_current_is_never_merged(seed: Seeder, store: Store) -> None:
    define(store, publish_gate={"max_drop_ratio": 0.2})
    v1 = full(seed, store, [{"id": i} for i in range(10)])
    held = changes(seed, store, v1, [("delete", i) for i in range(5)])
    late = changes(seed, store, v1, [{"id": 12}], complete=False)
    assert store.writer.publish_quarantined("s", held.version) == "published"

    late.complete({"base": str(v1), "incremental": state(store, "incremental")})

    meta = store.reader.batch("s", late.version)
    assert meta["status"] == "abandoned" and meta["error"]["kind"] == "stale"
    assert store.reader.current_version("s") == held.version
    assert [record["id"] for record in served(store)] == [5, 6, 7, 8, 9]


def test_a_quarantined_merge_cannot_be_published_once_a_newer_version_is(
        seed: Seeder, store: Store) -> None:
    define(store, publish_gate={"max_drop_ratio": 0.2})
    v1 = full(seed, store, [{"id": i} for i in range(10)])
    held = changes(seed, store, v1, [("delete", i) for i in range(5)])
    assert seed.status("s", held.version) == "quarantined"
    assert "drop_ratio: 5 records" in store.reader.batch("s", held.version)[
        "quarantine_reason"]
    full(seed, store, [{"id": i} for i in range(10)])

    assert store.writer.publish_quarantined("s", held.version) != "published"
    assert seed.status("s", held.version) == "discarded"


def test_two_consumers_merging_at_once_build_one_exact_version(
        seed: Seeder, store: Store) -> None:
    define(store)
    v1 = full(seed, store, [{"id": i, "v": 0} for i in range(12)])
    batch = changes(seed, store, v1, [{"id": 3, "v": 1}, ("delete", 4)], complete=False)
    store.writer.complete(batch.lease, 1, 2, {
        "base": str(v1), "incremental": orjson.dumps(state(store, "incremental")).decode()})
    incremental.COPY_CHUNK, chunk = 5, incremental.COPY_CHUNK
    try:
        keys = StreamKeys(store.prefix, "s")
        store.merger._begin(keys=[keys.batch(batch.version), keys.records(batch.version),
                                  keys.upserts(batch.version), keys.pages(batch.version)],
                            args=[60_000])
        store.merger._copy(keys=[keys.batch(batch.version), keys.records(v1),
                                 keys.records(batch.version), keys.lock],
                           args=[5, 60_000, batch.version, 60_000, 12])  # one copied a part
        assert settle(store, "s", batch.version) == "published"  # the other did the rest
        assert settle(store, "s", batch.version) == "not_running"
    finally:
        incremental.COPY_CHUNK = chunk
    expected = [{"id": i, "v": 1 if i == 3 else 0} for i in range(12) if i != 4]
    assert served(store) == expected


def test_an_index_left_behind_is_rebuilt(seed: Seeder, store: Store) -> None:
    define(store)
    v1 = full(seed, store, [{"id": 1, "v": 0}, {"id": 2, "v": 0}])
    v2 = changes(seed, store, v1, [{"id": 3, "v": 0}]).version
    index = StreamKeys(store.prefix, "s").index  # as if the move to v2 died half-way:
    store.connection.hset(index, "", f"{v2}:patching")
    store.connection.hdel(index, "3")

    changes(seed, store, v2, [{"id": 3, "v": 1}])

    assert served(store) == [{"id": 1, "v": 0}, {"id": 2, "v": 0}, {"id": 3, "v": 1}]
    assert store.reader.batch("s", v2 + 1)["changes"]["updated"] == 1


@pytest.mark.parametrize("definition_change", [{"key": "name"}, {"order_by": "t"}])
def test_a_changed_definition_abandons_the_merge(seed: Seeder, store: Store,
                                                 definition_change: dict[str, Any]) -> None:
    define(store)
    v1 = full(seed, store, [{"id": 1, "name": "a"}])
    batch = changes(seed, store, v1, [{"id": 1, "name": "b"}], complete=False)
    old = state(store, "incremental")
    define(store, **definition_change)

    batch.complete({"base": str(v1), "incremental": old})

    meta = store.reader.batch("s", batch.version)
    assert meta["status"] == "abandoned" and meta["error"]["kind"] == "definition_changed"


def test_changes_whose_staging_expired_fail_instead_of_publishing_less(
        seed: Seeder, store: Store) -> None:
    define(store)
    v1 = full(seed, store, [{"id": 1}, {"id": 2}])
    batch = changes(seed, store, v1, [{"id": 3}, ("delete", 1)], complete=False)
    store.connection.delete(StreamKeys(store.prefix, "s").records(batch.version))

    batch.complete({"base": str(v1), "incremental": state(store, "incremental")})

    meta = store.reader.batch("s", batch.version)
    assert meta["status"] == "failed" and meta["error"]["kind"] == "staging_expired"
    assert store.reader.current_version("s") == v1


def test_a_record_that_differs_only_in_context_fields_is_no_change(
        seed: Seeder, store: Store) -> None:
    define(store, middleware=[{"type": "add_fields", "context": ["_fetched_at"]}])
    info = {"incremental": state(store, "full"), "middleware": {"context_fields": ["_fetched_at"]}}
    v1 = seed.publish("s", [{"id": 1, "_fetched_at": "a"}, {"id": 2, "_fetched_at": "a"}],
                      info=info)
    batch = seed.batch("s")
    batch.outbox.page(1, [(float(PAGE_STRIDE), encode({"id": 1, "_fetched_at": "b"}))])
    batch.sizes[1] = 1
    batch.complete({"base": str(v1), "incremental": state(store, "incremental"),
                    "middleware": {"context_fields": ["_fetched_at"]}})

    assert seed.status("s", batch.version) == "unchanged"
