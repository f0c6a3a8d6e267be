"""The change feed: change sets computed at publish, folded over versions, 410 when lost."""

from __future__ import annotations

from typing import Any

import fakeredis
import pytest
from flask.testing import FlaskClient

from app.extensions import Store
from app.store.keys import StreamKeys
from config.streams import StreamDefinition
from tests.support.seed import Seeder

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
        "from": first, "added": 1, "updated": 1, "removed": 1, "unkeyed": 0, "duplicates": 0}


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
    assert redis.ttl(KEYS.digests(versions[-1])) == -1
    assert redis.ttl(KEYS.digests(versions[0])) > 0
    assert redis.ttl(KEYS.changes(versions[0])) == -1  # kept as long as the history


def test_digests_missing_are_rebuilt_from_records(s: Store, seed: Seeder, client: FlaskClient,
                                                   redis: fakeredis.FakeRedis) -> None:
    first = seed.publish("s", [{"id": 1, "v": 1}, {"id": 2}])
    redis.delete(KEYS.digests(first))
    seed.publish("s", [{"id": 1, "v": 2}, {"id": 2}])

    assert changes(client, since=first)["updated"] == [{"id": 1, "v": 2}]
