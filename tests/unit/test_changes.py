"""The change feed: change sets computed at publish, folded over versions, 410 when lost."""

from __future__ import annotations

from typing import Any

import fakeredis
import pytest
from flask.testing import FlaskClient

from app.extensions import Store
from app.publish import settle as settle_batch
from app.records import to_entries
from app.store.keys import StreamKeys
from config.streams import StreamDefinition

KEYS = StreamKeys("ds", "s")


def settle(store: Store, records: list[dict[str, Any]]) -> tuple[int, str]:
    lease = store.locks.acquire("s")
    assert lease is not None
    if records:
        store.writer.store_page(lease, 1, to_entries(records, 1, None))
    store.writer.complete(lease, 1 if records else 0, len(records))
    verdict = settle_batch(store, "s", lease.version)
    store.locks.release(lease)
    return lease.version, verdict


def publish(store: Store, records: list[dict[str, Any]]) -> int:
    version, verdict = settle(store, records)
    assert verdict == "published"
    return version


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


def test_one_batch_reports_added_updated_removed(s: Store, client: FlaskClient) -> None:
    first = publish(s, [{"id": 1, "v": "a"}, {"id": 2, "v": "b"}, {"id": 3, "v": "c"}])
    second = publish(s, [{"id": 1, "v": "a"}, {"id": 2, "v": "B"}, {"id": 4, "v": "d"}])

    body = changes(client, since=first)

    assert (body["from"], body["to"]) == (first, second)
    assert body["added"] == [{"id": 4, "v": "d"}]
    assert body["updated"] == [{"id": 2, "v": "B"}]
    assert body["removed"] == [3]
    assert body["next_cursor"] is None
    assert s.reader.batch("s", second)["changes"] == {
        "from": first, "added": 1, "updated": 1, "removed": 1, "unkeyed": 0, "duplicates": 0}


def test_since_zero_lists_everything_as_added(s: Store, client: FlaskClient) -> None:
    publish(s, [{"id": "a"}, {"id": "b"}])

    body = changes(client, since=0)

    assert body["added"] == [{"id": "a"}, {"id": "b"}]
    assert body["updated"] == body["removed"] == []


def test_several_batches_fold_into_net_changes(s: Store, client: FlaskClient) -> None:
    base = publish(s, [{"id": 1, "v": 0}, {"id": 2, "v": 0}, {"id": 3, "v": 0}])
    publish(s, [{"id": 1, "v": 1}, {"id": 2, "v": 0}, {"id": 3, "v": 0}, {"id": 9, "v": 0}])
    publish(s, [{"id": 1, "v": 1}, {"id": 3, "v": 0}, {"id": 7, "v": 0}])
    last = publish(s, [{"id": 1, "v": 2}, {"id": 3, "v": 0}, {"id": 2, "v": 5}])

    body = changes(client, since=base)

    # 9 added then removed: absent; 2 removed then added again: updated; 7 added, removed.
    assert body["to"] == last
    assert body["added"] == []
    assert body["updated"] == [{"id": 1, "v": 2}, {"id": 2, "v": 5}]
    assert body["removed"] == []


def test_quarantined_and_failed_batches_do_not_count(s: Store, client: FlaskClient) -> None:
    base = publish(s, [{"id": i} for i in range(20)])
    _, verdict = settle(s, [{"id": 0}])  # drops 95%: quarantined
    assert verdict == "quarantined"
    lease = s.locks.acquire("s")
    assert lease is not None
    s.writer.store_page(lease, 1, to_entries([{"id": 99}], 1, None))
    s.writer.finish("s", lease.version, "failed", {"kind": "timeout", "message": "x"})
    s.locks.release(lease)
    last = publish(s, [{"id": i} for i in range(1, 21)])

    body = changes(client, since=base)

    assert body["to"] == last
    assert body["added"] == [{"id": 20}]
    assert body["removed"] == [0]


def test_pages_follow_the_cursor_across_versions(s: Store, client: FlaskClient) -> None:
    base = publish(s, [{"id": i} for i in range(0, 30, 2)])
    publish(s, [{"id": i} for i in range(30)])
    publish(s, [{"id": i} for i in range(1, 30)])
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
        publish(s, [{"id": i} for i in range(1, 30)] + [{"id": 1000 + _}])

    assert sorted(r["id"] for r in seen["added"]) == list(range(1, 30, 2))
    assert seen["removed"] == [0] and seen["updated"] == []


def test_history_lost_answers_410_full_reload(s: Store, client: FlaskClient,
                                              redis: fakeredis.FakeRedis) -> None:
    first = publish(s, [{"id": 1}])
    second = publish(s, [{"id": 2}])
    publish(s, [{"id": 3}])
    redis.delete(KEYS.changes(second))

    response = client.get("/streams/s/changes", query_string={"since": first})

    assert response.status_code == 410
    assert response.json["error"]["code"] == "gone"
    assert "full reload" in response.json["error"]["message"]
    redis.delete(KEYS.batch(second))
    assert client.get("/streams/s/changes?since=1").status_code == 410


def test_since_current_is_empty_and_newer_is_a_bad_request(s: Store,
                                                          client: FlaskClient) -> None:
    current = publish(s, [{"id": 1}])

    assert changes(client, since=current)["added"] == []
    assert client.get(f"/streams/s/changes?since={current + 1}").status_code == 400
    assert client.get("/streams/s/changes").status_code == 400
    assert client.get("/streams/s/changes?since=x").status_code == 400


def test_change_data_expires_with_the_batch(s: Store, redis: fakeredis.FakeRedis) -> None:
    versions = [publish(s, [{"id": i}]) for i in range(3)]

    assert redis.ttl(KEYS.changes(versions[-1])) == -1
    assert redis.ttl(KEYS.digests(versions[-1])) == -1
    assert redis.ttl(KEYS.digests(versions[0])) > 0
    assert redis.ttl(KEYS.changes(versions[0])) == -1  # kept as long as the history


def test_digests_missing_are_rebuilt_from_records(s: Store, client: FlaskClient,
                                                   redis: fakeredis.FakeRedis) -> None:
    first = publish(s, [{"id": 1, "v": 1}, {"id": 2}])
    redis.delete(KEYS.digests(first))
    publish(s, [{"id": 1, "v": 2}, {"id": 2}])

    assert changes(client, since=first)["updated"] == [{"id": 1, "v": 2}]
