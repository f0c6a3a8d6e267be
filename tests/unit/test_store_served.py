"""No version going backwards: a pointer a failover set back is answered 503 until it
catches up; a stream deleted and defined again starts over; new versions stay above
every version the pointer or the history has held."""

from __future__ import annotations

import fakeredis
import pytest
from flask.testing import FlaskClient

from app.exceptions import StoreBehind
from app.extensions import Store
from app.store.keys import StreamKeys
from app.store.locks import BatchLease
from app.store.served import ServedVersions
from config.streams import StreamDefinition
from tests.support.seed import Seeder

DEFINITION = StreamDefinition.model_validate({"source": {"url": "http://127.0.0.1:1/x"}})


@pytest.fixture
def published(store: Store, seed: Seeder) -> Store:
    store.definitions.put("s", DEFINITION)
    for n in (1, 2):
        seed.publish("s", [{"id": n}])
    return store


def fail_over(redis: fakeredis.FakeRedis, version: int) -> None:
    """What a replica promoted before it held the last publish answers: an older pointer."""
    redis.set(StreamKeys("ds", "s").current, version)


@pytest.mark.parametrize("query", [{}, {"format": "ndjson"}, {"order": "desc"}])
def test_an_older_pointer_is_503_until_it_catches_up(
        published: Store, client: FlaskClient, redis: fakeredis.FakeRedis, seed: Seeder,
        query: dict[str, str]) -> None:
    assert client.get("/streams/s/data", query_string=query).headers["X-Stream-Version"] == "2"

    fail_over(redis, 1)
    for _ in range(2):
        behind = client.get("/streams/s/data", query_string=query)
        assert behind.status_code == 503, behind.get_data(as_text=True)
        assert behind.json["error"]["code"] == "store_unavailable"
        assert behind.headers["Retry-After"] == "5"
    # A pinned version is no claim about the current one: still served.
    assert client.get("/streams/s/data", query_string={"version": 1}).status_code == 200

    fail_over(redis, 2)
    assert client.get("/streams/s/data", query_string=query).status_code == 200
    seed.publish("s", [{"id": 3}])
    again = client.get("/streams/s/data", query_string=query)
    assert again.status_code == 200 and again.headers["X-Stream-Version"] == "3"


def test_a_stream_deleted_and_defined_again_starts_over(
        published: Store, client: FlaskClient, seed: Seeder) -> None:
    assert client.get("/streams/s/data").json["version"] == 2
    published.definitions.delete("s")  # as DELETE does from another web process
    published.purge("s")
    published.definitions.put("s", DEFINITION)
    seed.publish("s", [{"id": "new"}])

    answer = client.get("/streams/s/data")
    assert answer.status_code == 200
    assert (answer.json["version"], answer.json["records"]) == (1, [{"id": "new"}])


def test_the_memory_is_bounded_oldest_out_first(redis: fakeredis.FakeRedis) -> None:
    served = ServedVersions(redis, "ds", kept=2)
    for stream in ("a", "b", "c"):
        redis.set(StreamKeys("ds", stream).seq, 5)
        served.check(stream, 5)
    served.check("a", 4)  # forgotten: no claim left on "a"
    with pytest.raises(StoreBehind):
        served.check("c", 4)


def test_a_new_version_stays_above_the_pointer_and_the_history(
        published: Store, redis: fakeredis.FakeRedis, seed: Seeder) -> None:
    keys = StreamKeys("ds", "s")
    seed.batch("s").page([{"id": 3}])  # version 3 began: it is in the history
    redis.delete(keys.lock)
    redis.set(keys.seq, 1)  # the failover lost the INCRs of versions 2 and 3
    lease = published.locks.acquire_once("s", "tick-after-failover")
    assert isinstance(lease, BatchLease) and lease.version == 4
    assert int(redis.get(keys.seq)) == 4

    redis.delete(keys.lock, keys.batches)
    redis.set(keys.seq, 1)  # and only the pointer is left to go by
    lease = published.locks.acquire_once("s", "tick-later")
    assert isinstance(lease, BatchLease) and lease.version == 3
