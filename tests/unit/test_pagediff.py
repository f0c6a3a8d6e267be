"""Change sets staged by the pages: the same change set as a walk over the whole batch,
without the walk, and the walk whenever the pages cannot stand for the batch."""

from __future__ import annotations

import random
from typing import Any

import pytest

from app.extensions import Store
from app.store.changesets import ChangeSets
from app.store.keys import StreamKeys
from config.streams import StreamDefinition
from tests.support.seed import Seeder, digest_buckets

DEFINITION = {"source": {"url": "http://127.0.0.1:1/x"}, "key": "id",
              "publish_gate": {"max_drop_ratio": 1.0}}


@pytest.fixture
def streams(store: Store) -> Store:
    for name in ("paged", "walked"):
        store.definitions.put(name, StreamDefinition.model_validate(DEFINITION))
    return store


def send(seed: Seeder, stream: str, records: list[Any], keyed: bool, page_size: int = 7,
         info: dict[str, Any] | None = None) -> int:
    """Send a whole batch with keyed pages, or with pages as a fetch without keys sends."""
    batch = seed.batch(stream)
    if not keyed:
        batch.outbox.keyer = None
    for start in range(0, max(1, len(records)), page_size):
        batch.page(records[start:start + page_size])
    batch.complete(info)
    return batch.version


def change_set(store: Store, stream: str, version: int) -> set[str]:
    return set(store.change_sets.of_version(stream, version)[1])


def versions(rng: random.Random) -> list[list[dict[str, Any]]]:
    """Five versions of up to 60 records: updates, removals and additions each time."""
    alive = {i: rng.randrange(3) for i in range(1, 50)}
    out = []
    for _ in range(5):
        for key in rng.sample(sorted(alive), 8):
            alive[key] = rng.randrange(100)  # updated (or, by chance, the same)
        for key in rng.sample(sorted(alive), 4):
            del alive[key]
        for key in range(max(alive) + 1, max(alive) + 6):
            alive[key] = 0
        records = [{"id": key, "v": value} for key, value in alive.items()]
        rng.shuffle(records)
        out.append(records)
    return out


def test_the_pages_stage_the_change_set_a_walk_over_the_batch_would(
        streams: Store, seed: Seeder, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(17)
    history = versions(rng)
    walked = [send(seed, "walked", records, keyed=False) for records in history]

    def no_walk(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a keyed batch was walked")

    monkeypatch.setattr(ChangeSets, "compute", no_walk)
    paged = [send(seed, "paged", records, keyed=True) for records in history]

    for mine, theirs in zip(paged, walked, strict=True):
        assert seed.status("paged", mine) == "complete"
        assert change_set(streams, "paged", mine) == change_set(streams, "walked", theirs)
        assert (streams.reader.batch("paged", mine)["changes"]["added"]
                == streams.reader.batch("walked", theirs)["changes"]["added"])
        for name in ("updated", "removed"):
            assert (streams.reader.batch("paged", mine)["changes"][name]
                    == streams.reader.batch("walked", theirs)["changes"][name])
    keys = StreamKeys("ds", "paged")
    assert not streams.connection.exists(keys.page_changes(paged[-1]))
    assert streams.connection.ttl(keys.changes(paged[-1])) == -1
    assert {streams.connection.ttl(name)
            for name in digest_buckets(streams.connection, keys, paged[-1])} == {-1}
    removed = streams.reader.batch("paged", paged[-1])["changes"]["removed"]
    assert removed == 4


def test_a_repeated_key_is_settled_by_the_walk_and_the_last_one_wins(
        streams: Store, seed: Seeder) -> None:
    first = send(seed, "paged", [{"id": 1, "v": 1}, {"id": 2, "v": 1}], keyed=True)
    second = send(seed, "paged", [{"id": 1, "v": 1}, {"id": 2, "v": 2}, {"id": 2, "v": 3}],
                  keyed=True, page_size=1)

    batch = streams.reader.batch("paged", second)
    assert batch["status"] == "complete"
    assert batch["duplicates_dropped"] == 1
    assert batch["changes"] == {"from": first, "added": 0, "updated": 1, "removed": 0}
    assert change_set(streams, "paged", second) == {'2\tu\t{"id":2,"v":3}'}


def test_a_record_without_key_fails_the_batch_naming_how_many(
        streams: Store, seed: Seeder) -> None:
    send(seed, "paged", [{"id": 1}], keyed=True)
    version = send(seed, "paged", [{"id": 1}, {"name": "x"}, {"name": "y"}], keyed=True)

    batch = streams.reader.batch("paged", version)
    assert batch["status"] == "failed"
    assert (batch["error"]["kind"], batch["error"]["records"]) == ("missing_key", 2)


def test_pages_keyed_without_the_batch_context_fields_are_walked(
        streams: Store, seed: Seeder) -> None:
    send(seed, "paged", [{"id": 1, "v": 1, "_at": "a"}], keyed=True,
         info={"middleware": {"context_fields": ["_at"]}})
    version = send(seed, "paged", [{"id": 1, "v": 1, "_at": "b"}], keyed=True,
                   info={"middleware": {"context_fields": ["_at"]}})

    assert streams.reader.batch("paged", version)["changes"]["updated"] == 0


def test_a_batch_that_began_on_another_base_is_walked(streams: Store, seed: Seeder) -> None:
    send(seed, "paged", [{"id": 1, "v": 1}], keyed=True)
    late = seed.batch("paged")
    late.page([{"id": 1, "v": 2}, {"id": 2, "v": 1}])
    # A quarantined batch published by hand moves the pointer under the running one.
    streams.connection.set(StreamKeys("ds", "paged").current, 0)
    late.page([{"id": 3, "v": 1}])
    streams.connection.set(StreamKeys("ds", "paged").current, late.version - 1)
    late.complete()

    batch = streams.reader.batch("paged", late.version)
    assert batch["status"] == "complete"
    assert batch["changes"] == {"from": late.version - 1, "added": 2, "updated": 1,
                                "removed": 0}


def test_an_unchanged_batch_stages_no_change(streams: Store, seed: Seeder) -> None:
    records = [{"id": i} for i in range(30)]
    send(seed, "paged", records, keyed=True)
    version = send(seed, "paged", records, keyed=True)

    assert streams.reader.batch("paged", version)["changes"]["added"] == 0
    assert change_set(streams, "paged", version) == set()
