"""Faults of the settle step and of bad input, at the default settings (DEFAULT_LIMITS): a
consumer killed while it settles, two consumers settling one batch, a record that cannot be
ordered."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from app import create_app, publish
from app.extensions import Store
from app.records import to_entries
from app.store.keys import StreamKeys
from app.store.locks import BatchLease, StreamLocks
from config.streams import StreamDefinition
from devtools.system import System
from tasks.protocol import Keyer, keyed_of, pack
from tests.faults.conftest import DEFAULT_LIMITS, launch, log_text
from tests.integration.conftest import Api
from tests.support.seed import Batch, digest_buckets
from tests.support.upstream import Upstream
from tests.support.waiting import wait_for

pytestmark = pytest.mark.faults

BIG = 40_000  # records: enough for a settle to take a moment to diff


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    server, running = launch(tmp_path_factory.mktemp("settling"), "settling", **DEFAULT_LIMITS)
    yield running
    running.stop_all()
    server.stop()


@pytest.fixture
def api(system: System) -> Api:
    return Api(system)


@pytest.fixture(scope="module")
def app(system: System) -> Flask:
    """An app of this process on the module's Redis: the store the racing settles use."""
    return create_app({"TESTING": True, "REDIS_URL": system.redis_url})


def pool_children(pid: int) -> list[int]:
    """Return the pids of the processes whose parent is `pid` (Celery's pool)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


def big(label_every: int, label: str) -> list[dict[str, Any]]:
    return [{"id": i, "label": label if i % label_every == 0 else "same", "n": i}
            for i in range(1, BIG + 1)]


def test_a_consumer_killed_while_settling_is_replaced_by_the_next_delivery(
        system: System, api: Api, upstream: Upstream, name: str) -> None:
    upstream.feed(name, big(BIG + 1, "v1"), page_size=2000)
    api.define(name, upstream.url(name))
    api.start(name, interval_seconds=600)
    first = wait_for(lambda: api.current_version(name), timeout=90, what="the first version")
    api.stop(name)
    upstream.feed(name, big(4000, "v2"), page_size=2000)  # 10 records change
    api.start(name, interval_seconds=600)
    keys = StreamKeys("ds", name)
    victim = first + 1

    def settling() -> bool:  # the change set is being written, the commit has not happened
        return bool(digest_buckets(system.redis, keys, victim)) and system.redis.hget(
            keys.batch(victim), "status") == "running"

    wait_for(settling, timeout=90, interval=0.005, what="the settle of the second batch")
    ingest = system.procs["ingest"].process
    assert ingest is not None
    for child in pool_children(ingest.pid):
        os.kill(child, signal.SIGKILL)
    killed_at = time.monotonic()

    fresh = wait_for(lambda: (v := api.current_version(name)) and v > first and v, timeout=90,
                     what="the batch settled by the next delivery")
    settled = time.monotonic() - killed_at
    api.stop(name)
    batch = api.call("GET", f"/streams/{name}/batches/{fresh}").json()["batch"]
    assert fresh == victim
    assert batch["records"] == BIG
    assert batch["changes"] == {"from": first, "added": 0, "updated": 10, "removed": 0}
    assert batch["duplicates_dropped"] == 0  # one record per key: counted beside the changes
    assert system.redis.zcard(keys.changes(victim)) == 10
    assert system.redis.ttl(keys.changes(victim)) == -1
    assert {system.redis.ttl(name) for name in digest_buckets(system.redis, keys, victim)} == {-1}
    assert "signal 9" in log_text(system, "ingest")
    print(f"\nconsumer killed while settling version {victim}: settled by the redelivered "
          f"message {settled:.1f}s after the kill, change set exact (10 updated)")


def test_two_consumers_settling_one_batch_leave_no_expiry_on_its_change_set(
        app: Flask, name: str) -> None:
    store: Store = app.extensions["store"]
    store.definitions.put(name, StreamDefinition.model_validate(
        {"source": {"url": "http://127.0.0.1:1/x"}, "key": "id"}))
    keys = StreamKeys("ds", name)
    rounds, records = 12, 12_000
    for round_ in range(rounds):
        lease = store.locks.acquire_once(name, f"tick-{round_}")
        assert isinstance(lease, BatchLease)
        rows = [{"id": i, "round": round_ if i % 7 == 0 else 0} for i in range(records)
                if i != round_]  # one key removed, the one removed before back again
        # Odd rounds: the pages staged the change set; even ones: the settle walks the batch.
        keyer = Keyer.for_batch(store, name, "id") if round_ % 2 else None
        _stage(store, lease, rows, page_size=4000, keyer=keyer)

        verdicts = _race_settles(store, name, lease.version)

        assert sorted(verdicts) == ["not_running", "published"], verdicts
        assert store.reader.current_version(name) == lease.version
        assert store.connection.ttl(keys.changes(lease.version)) == -1, f"round {round_}"
        assert {store.connection.ttl(name) for name in digest_buckets(
            store.connection, keys, lease.version)} == {-1}, f"round {round_}"
        if round_:
            assert store.reader.batch(name, lease.version)["changes"]["removed"] == 1
            assert not store.connection.exists(keys.page_changes(lease.version))
    print(f"\ntwo settles raced {rounds} times: every published change set is permanent")


def _race_settles(store: Store, name: str, version: int) -> list[str]:
    """Settle one batch from two threads at once; return their verdicts."""
    verdicts: list[str] = []
    start = threading.Barrier(2)

    def settle() -> None:
        start.wait()
        verdicts.append(publish.settle(store, name, version))

    threads = [threading.Thread(target=settle) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return verdicts


def _stage(store: Store, lease: BatchLease, rows: list[Any], page_size: int,
           keyer: Keyer | None = None) -> None:
    """Store a whole batch through the writer, without settling it."""
    store.writer.begin(lease)
    pages = 0
    for start in range(0, len(rows), page_size):
        pages += 1
        packed = pack(to_entries(rows[start:start + page_size], pages, None), keyer=keyer)
        store.writer.store_packed(lease, pages, packed["members"], packed["scores"],
                                  packed["count"], keyed=keyed_of(packed))
    store.writer.complete(lease, pages, len(rows))


def test_a_record_that_cannot_be_ordered_fails_its_batch_within_seconds(
        system: System, api: Api, upstream: Upstream, name: str) -> None:
    started = time.monotonic()
    streams = {}
    for label, value in (("nan", "NaN"), ("inf", "Infinity"), ("text", "soon")):
        records = [{"id": i, "ts": i} for i in range(1, 31)]
        records[13]["ts"] = value  # page 2, record 4
        upstream.feed(f"{name}-{label}", records, page_size=10)
        api.define(f"{name}-{label}", upstream.url(f"{name}-{label}"), order_by="ts")
        api.start(f"{name}-{label}", interval_seconds=600)
        streams[f"{name}-{label}"] = value

    for stream in streams:
        failed = wait_for(lambda s=stream: (b := api.batches(s)) and b[0]["status"] != "running"
                          and b[0], timeout=20, what=f"{stream} to end")
        api.stop(stream)
        assert failed["status"] == "failed"
        assert failed["error"]["kind"] == "bad_record"
        assert (failed["error"]["page"], failed["error"]["position"]) == (2, 4)
        assert api.current_version(stream) is None
        assert system.redis.hkeys(StreamKeys("ds", stream).pages(failed["version"])) in (
            [], ["1"])  # page 1 at most: nothing of page 2
    took = time.monotonic() - started

    upstream.feed(name, [], page_size=10)
    api.define(name, upstream.url(name))
    sent = Batch(StreamLocks(system.redis, "ds", 30_000), system.celery, name)
    sent.outbox.page(1, [(1.0, '{"id":1}'), (float("nan"), '{"id":2}')])
    failed = wait_for(lambda: (b := api.batches(name)) and b[0]["status"] == "failed" and b[0],
                      timeout=20, what="the ingest consumer to fail the batch")
    assert (failed["error"]["kind"], failed["error"]["page"], failed["error"]["position"]) == (
        "bad_record", 1, 2)
    assert not system.redis.exists(StreamKeys("ds", name).records(sent.version))
    print(f"\nbad order_by values (NaN, Infinity, text): 3 batches failed bad_record "
          f"(page 2, record 4) within {took:.1f}s; a NaN score reaching the consumer too")
