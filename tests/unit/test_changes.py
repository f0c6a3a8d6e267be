"""The change feed: change sets computed at publish, folded over versions, 410 when lost."""

from __future__ import annotations

from typing import Any

import fakeredis
import pytest
from flask.testing import FlaskClient

from app.extensions import Store
from app.store import changesets
from app.store.keys import StreamKeys
from config.streams import StreamDefinition
from tests.support.seed import Seeder, digest_buckets

KEYS = StreamKeys("ds", "s")


def changes(client: FlaskClient, **params: Any) -> dict[str, Any]:
    response = client.get("/streams/s/changes", query_string=params)
    assert response.status_code == 200, response.json
    return response.json  # type: ignore[return-value]


@pytest.fixture
def s(store: Store) -> Store:
    store.definitions.put("s", StreamDefinition.model_validate(
        {"source": {"url": "http://127.0.0.1:1/x"}, "key": "id",
         "publish_gate": {"max_drop_ratio": 0.9}}))
    return store


def test_one_batch_reports_added_updated_removed(s: Store, seed: Seeder,
                                                 client: FlaskClient) -> None:
    first = seed.publish("s", [{"id": 1, "v": "a"}, {"id": 2, "v": "b"}, {"id": 3, "v": "c"}])
    second = seed.publish("s", [{"id": 1, "v": "a"}, {"id": 2, "v": "B"}, {"id": 4, "v": "d"}])

    body = changes(client, since=first)

    assert (body["from"], body["to"]) == (first, second)
    assert body["added"] == [{"id": 4, "v": "d"}]
    assert body["updated"] == [{"id": 2, "v": "B"}]
    assert body["removed"] == [3]
    assert body["next_cursor"] is None
    assert s.reader.batch("s", second)["changes"] == {
        "from": first, "added": 1, "updated": 1, "removed": 1}
    assert s.reader.batch("s", second)["duplicates_dropped"] == 0


def test_since_zero_lists_everything_as_added(s: Store, seed: Seeder, client: FlaskClient) -> None:
    seed.publish("s", [{"id": "a"}, {"id": "b"}])

    body = changes(client, since=0)

    assert body["added"] == [{"id": "a"}, {"id": "b"}]
    assert body["updated"] == body["removed"] == []


def test_several_batches_fold_into_net_changes(s: Store, seed: Seeder, client: FlaskClient) -> None:
    base = seed.publish("s", [{"id": 1, "v": 0}, {"id": 2, "v": 0}, {"id": 3, "v": 0}])
    seed.publish("s", [{"id": 1, "v": 1}, {"id": 2, "v": 0}, {"id": 3, "v": 0}, {"id": 9, "v": 0}])
    seed.publish("s", [{"id": 1, "v": 1}, {"id": 3, "v": 0}, {"id": 7, "v": 0}])
    last = seed.publish("s", [{"id": 1, "v": 2}, {"id": 3, "v": 0}, {"id": 2, "v": 5}])

    body = changes(client, since=base)

    # 9 added then removed: absent; 2 removed then added again: updated; 7 added, removed.
    assert body["to"] == last
    assert body["added"] == []
    assert body["updated"] == [{"id": 1, "v": 2}, {"id": 2, "v": 5}]
    assert body["removed"] == []


def test_quarantined_and_failed_batches_do_not_count(s: Store, seed: Seeder,
                                                     client: FlaskClient) -> None:
    base = seed.publish("s", [{"id": i} for i in range(20)])
    dropped = seed.send("s", [{"id": 0}])  # drops 95%: quarantined
    assert seed.status("s", dropped.version) == "quarantined"
    failed = seed.batch("s")
    failed.page([{"id": 99}])
    failed.fail("timeout", "x")
    last = seed.publish("s", [{"id": i} for i in range(1, 21)])

    body = changes(client, since=base)

    assert body["to"] == last
    assert body["added"] == [{"id": 20}]
    assert body["removed"] == [0]


def test_pages_follow_the_cursor_across_versions(s: Store, seed: Seeder,
                                                 client: FlaskClient) -> None:
    base = seed.publish("s", [{"id": i} for i in range(0, 30, 2)])
    seed.publish("s", [{"id": i} for i in range(30)])
    seed.publish("s", [{"id": i} for i in range(1, 30)])
    seen: dict[str, list[Any]] = {"added": [], "updated": [], "removed": []}
    params: dict[str, Any] = {"since": base, "limit": 4}
    for _ in range(50):
        body = changes(client, **params)
        for field, items in seen.items():
            items += body[field]
        if body["next_cursor"] is None:
            break
        params = {"cursor": body["next_cursor"], "limit": 4}
        # A newer version does not move a pinned cursor.
        seed.publish("s", [{"id": i} for i in range(1, 30)] + [{"id": 1000 + _}])

    assert sorted(r["id"] for r in seen["added"]) == list(range(1, 30, 2))
    assert seen["removed"] == [0] and seen["updated"] == []


def test_history_lost_answers_410_full_reload(s: Store, seed: Seeder, client: FlaskClient,
                                              redis: fakeredis.FakeRedis) -> None:
    first = seed.publish("s", [{"id": 1}])
    second = seed.publish("s", [{"id": 2}])
    seed.publish("s", [{"id": 3}])
    redis.delete(KEYS.changes(second))

    response = client.get("/streams/s/changes", query_string={"since": first})

    assert response.status_code == 410
    assert response.json["error"]["code"] == "gone"
    assert "full reload" in response.json["error"]["message"]
    redis.delete(KEYS.batch(second))
    assert client.get("/streams/s/changes?since=1").status_code == 410


def test_since_current_is_empty_and_newer_is_a_bad_request(s: Store, seed: Seeder,
                                                          client: FlaskClient) -> None:
    current = seed.publish("s", [{"id": 1}])

    assert changes(client, since=current)["added"] == []
    assert client.get(f"/streams/s/changes?since={current + 1}").status_code == 400
    assert client.get("/streams/s/changes").status_code == 400
    assert client.get("/streams/s/changes?since=x").status_code == 400


def test_change_data_expires_with_the_batch(s: Store, seed: Seeder,
                                            redis: fakeredis.FakeRedis) -> None:
    versions = [seed.publish("s", [{"id": i}]) for i in range(3)]

    assert redis.ttl(KEYS.changes(versions[-1])) == -1
    assert {redis.ttl(name) for name in digest_buckets(redis, KEYS, versions[-1])} == {-1}
    assert all(redis.ttl(name) > 0 for name in digest_buckets(redis, KEYS, versions[0]))
    assert digest_buckets(redis, KEYS, versions[0])
    assert redis.ttl(KEYS.changes(versions[0])) == -1  # kept as long as the history


def test_digests_missing_are_rebuilt_from_records(s: Store, seed: Seeder, client: FlaskClient,
                                                   redis: fakeredis.FakeRedis) -> None:
    first = seed.publish("s", [{"id": 1, "v": 1}, {"id": 2}])
    redis.delete(*digest_buckets(redis, KEYS, first))
    seed.publish("s", [{"id": 1, "v": 2}, {"id": 2}])

    assert changes(client, since=first)["updated"] == [{"id": 1, "v": 2}]


def test_a_batch_holds_one_record_per_key_the_last(s: Store, seed: Seeder, client: FlaskClient
                                                   ) -> None:
    records = [{"id": 1, "v": "first"}, {"id": 2, "v": "x"}, {"id": 2, "v": "x"},
               {"id": 1, "v": "second"}, {"id": 3, "v": "y"}]
    batch = seed.send("s", records, page_size=2)  # the duplicates sit on other pages

    assert [r["v"] for r in client.get("/streams/s/data").json["records"]] == [
        "x", "second", "y"]
    published = s.reader.batch("s", batch.version)
    assert (published["records_received"], published["records"]) == (5, 3)
    assert published["duplicates_dropped"] == 2  # one same-key record, one identical
    assert published["records_stored"] == 3  # lowered by the losers the publish removed
    assert changes(client, since=0)["added"] == [{"id": 1, "v": "second"}, {"id": 2, "v": "x"},
                                                 {"id": 3, "v": "y"}]


def test_the_last_record_of_a_key_wins_in_order_by_order(s: Store, seed: Seeder,
                                                         client: FlaskClient) -> None:
    seed.send("s", [{"id": 1, "at": 20, "v": "new"}, {"id": 1, "at": 10, "v": "old"}],
              order_by="at")

    assert client.get("/streams/s/data").json["records"] == [{"id": 1, "at": 20, "v": "new"}]


def test_records_without_the_key_fail_the_batch_naming_the_key(store: Store, seed: Seeder,
                                                               redis: fakeredis.FakeRedis
                                                               ) -> None:
    store.definitions.put("s", StreamDefinition.model_validate(
        {"source": {"url": "http://127.0.0.1:1/x"}, "key": "uuid"}))
    first = seed.publish("s", [{"uuid": "a"}])

    batch = seed.send("s", [{"uuid": "a"}, {"id": 2, "name": "b"}, {"id": 3, "uuid": None}])

    failed = store.reader.batch("s", batch.version)
    assert failed["status"] == "failed"
    assert failed["error"] == {
        "kind": "missing_key", "key": "uuid", "records": 2,
        "message": "2 of 3 records have no value at the stream's key 'uuid' (the first has "
                   "fields id, name); fix the definition's `key` or its middleware"}
    assert store.reader.current_version("s") == first
    assert not redis.exists(KEYS.records(batch.version), KEYS.changes(batch.version))
    assert store.locks.holder("s") is None


def test_fields_from_the_batch_context_are_not_changes(s: Store, seed: Seeder,
                                                       client: FlaskClient) -> None:
    def fetched(version: int, changed: set[int]) -> list[dict[str, Any]]:
        return [{"id": i, "price": i + (100 if i in changed else 0),
                 "_fetched_at": f"t{version}", "_batch_version": version}
                for i in range(1003)]

    info = {"middleware": {"context_fields": ["_batch_version", "_fetched_at"]}}
    first = seed.send("s", fetched(1, set()), page_size=100, info=info).version
    changed = set(range(0, 1000, 100))
    second = seed.send("s", fetched(2, changed), page_size=100, info=info).version

    assert s.reader.batch("s", second)["changes"] == {
        "from": first, "added": 0, "updated": 10, "removed": 0}
    updated = changes(client, since=first, limit=1000)["updated"]
    assert sorted(r["id"] for r in updated) == sorted(changed)
    assert {r["_batch_version"] for r in updated} == {2}  # the records as now served


def test_a_second_settle_of_a_published_batch_writes_nothing(s: Store, seed: Seeder,
                                                             redis: fakeredis.FakeRedis
                                                             ) -> None:
    first = seed.publish("s", [{"id": 1}, {"id": 2}])
    second = seed.publish("s", [{"id": 2}, {"id": 2, "v": 1}, {"id": 3}])
    before = redis.zrange(KEYS.changes(second), 0, -1)

    late = s.change_sets.compute("s", second, first, "id")  # a slow consumer, after publish

    assert late.losers == [] and late.kept == 2
    assert redis.zrange(KEYS.changes(second), 0, -1) == before
    assert redis.ttl(KEYS.changes(second)) == -1
    assert {redis.ttl(name) for name in digest_buckets(redis, KEYS, second)} == {-1}


def test_changed_records_beyond_the_memory_bound_are_read_again(
        s: Store, seed: Seeder, client: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(changesets, "PENDING_BYTES", 0)  # keep none: read every one again
    first = seed.send("s", [{"id": i, "v": 0} for i in range(1003)], page_size=100).version
    updated = {3, 500, 999}
    seed.send("s", [{"id": i, "v": int(i in updated)} for i in range(1, 1003)]
              + [{"id": 0, "v": 0}, {"id": 5000, "v": 0}], page_size=100)

    assert len(changes(client, since=0, limit=2000)["added"]) == 1004
    body = changes(client, since=first, limit=2000)
    assert sorted(r["id"] for r in body["updated"]) == sorted(updated)
    assert (body["added"], body["removed"]) == ([{"id": 5000, "v": 0}], [])
