"""The batch lease: short, renewed by a heartbeat, and taking over from a dead batch."""

from __future__ import annotations

import time

import fakeredis
from flask.testing import FlaskClient

from app.extensions import Store
from app.store.keys import StreamKeys
from app.store.locks import BatchLease, StreamLocks
from config import defaults
from config.streams import StreamDefinition
from tasks.heartbeat import Heartbeat
from tests.support.seed import Seeder
from tests.support.waiting import wait_for

LOCK = StreamKeys("ds", "s").lock
DEFINITION = {"source": {"url": "http://127.0.0.1:1/x"}, "key": "id"}


def test_the_lease_lives_one_ttl_at_the_defaults(store: Store,
                                                 redis: fakeredis.FakeRedis) -> None:
    lease = store.locks.acquire_once("s", "tick-1")
    assert isinstance(lease, BatchLease)

    assert 0 < redis.pttl(LOCK) <= defaults.LEASE_TTL_SECONDS * 1000
    assert store.locks.extend(lease)


def test_taking_a_lapsed_lease_abandons_the_batch_still_running(
        store: Store, seed: Seeder, redis: fakeredis.FakeRedis) -> None:
    orphan = seed.batch("s")
    orphan.page([{"id": 1}])
    redis.delete(LOCK)  # its worker died: nobody renewed the lease

    newer = store.locks.acquire_once("s", "tick-2")

    assert isinstance(newer, BatchLease) and newer.took_over == orphan.version
    ended = store.reader.batch("s", orphan.version)
    assert ended["status"] == "abandoned"
    assert ended["error"]["kind"] == "worker_lost"
    assert "lease lapsed" in ended["error"]["message"]
    orphan.page([{"id": 2}], number=2)  # a late page of the orphan adds nothing
    assert store.reader.batch("s", orphan.version)["pages_received"] == 1


def test_a_batch_that_never_began_is_abandoned_too(store: Store,
                                                   redis: fakeredis.FakeRedis) -> None:
    lost = store.locks.acquire_once("s", "tick-1")  # killed before its begin was sent
    assert isinstance(lost, BatchLease)
    redis.delete(LOCK)

    newer = store.locks.acquire_once("s", "tick-2")

    assert isinstance(newer, BatchLease) and newer.took_over == lost.version
    assert store.reader.batch("s", lost.version)["status"] == "abandoned"
    assert [b["version"] for b in store.reader.batches("s")] == [lost.version]


def test_a_finished_batch_is_left_as_it_is(store: Store, seed: Seeder) -> None:
    published = seed.publish("s", [{"id": 1}])

    newer = store.locks.acquire_once("s", "tick-2")

    assert isinstance(newer, BatchLease) and newer.took_over == 0
    assert store.reader.batch("s", published)["status"] == "complete"


def test_stop_with_cancel_ends_an_orphan_whose_lease_lapsed(
        client: FlaskClient, store: Store, seed: Seeder, redis: fakeredis.FakeRedis) -> None:
    store.definitions.put("s", StreamDefinition.model_validate(DEFINITION))
    orphan = seed.batch("s")
    redis.delete(LOCK)

    stopped = client.post("/streams/s/stop", json={"cancel": True})

    assert stopped.json["cancelled_version"] == orphan.version
    assert store.reader.batch("s", orphan.version)["status"] == "cancelled"
    again = client.post("/streams/s/stop", json={"cancel": True})
    assert again.json["cancelled_version"] is None


def test_the_heartbeat_keeps_a_short_lease_alive_until_it_stops(
        redis: fakeredis.FakeRedis) -> None:
    locks = StreamLocks(redis, "ds", 300)
    lease = locks.acquire_once("s", "tick-1")
    assert isinstance(lease, BatchLease)

    with Heartbeat(locks, lease, 0.05) as heartbeat:
        time.sleep(0.9)  # three lease lives: only the heartbeat can keep it
        assert locks.holder("s") == (lease.token, lease.version)
        assert not heartbeat.lost.is_set()
    wait_for(lambda: locks.holder("s") is None, timeout=2, what="the lease to lapse")


def test_the_heartbeat_tells_when_the_lease_is_gone(redis: fakeredis.FakeRedis) -> None:
    locks = StreamLocks(redis, "ds", 10_000)
    lease = locks.acquire_once("s", "tick-1")
    assert isinstance(lease, BatchLease)

    with Heartbeat(locks, lease, 0.02) as heartbeat:
        locks.release(lease)  # as a cancel does
        assert heartbeat.lost.wait(2)


def test_a_deleted_stream_leaves_no_orphan_for_the_next_lease(
        store: Store, seed: Seeder, client: FlaskClient) -> None:
    store.definitions.put("s", StreamDefinition.model_validate(DEFINITION))
    seed.publish("s", [{"id": 1}])
    assert client.delete("/streams/s").status_code == 204  # its `seq` goes with the rest

    lease = store.locks.acquire_once("s", "tick-after-delete")

    assert isinstance(lease, BatchLease) and (lease.version, lease.took_over) == (1, 0)
    assert store.reader.batches("s") == []  # no `abandoned` row of the deleted stream
