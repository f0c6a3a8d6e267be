"""Failover without a wrong answer: the store on a Redis Cluster (3 masters, a replica
each) and the broker and RedBeat behind Sentinel (3 sentinels, master, replica).

1. The master that owns a stream's slot is killed while a batch of it flows and readers
   page through it: readers get whole versions or 503 store_unavailable with Retry-After
   (never another error, a mixed read or a version going back); the batch in flight
   publishes whole or fails; the next one publishes whole.
2. The broker's master is killed while beat ticks: beat survives, ticks resume with one
   batch per tick, readers (of the store, elsewhere) see nothing at all.
The figures each test observes are printed and written to test-output/faults/failover/.
"""

from __future__ import annotations

import itertools
import json
import logging
import shutil
import time
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import datetime
from functools import partial
from typing import Any

import pytest
from celery import Celery
from redbeat.schedulers import get_redis

from app import create_app
from app.records import parse_time
from app.store.keys import StreamKeys
from app.store.locks import BatchLease
from config import defaults
from devtools.redis_cluster import Cluster, SentinelGroup, client
from devtools.system import System
from tests.faults.conftest import FAULT_ENV, ROOT, catalogue, log_text
from tests.integration.conftest import Api
from tests.support.readers import Reader
from tests.support.upstream import Upstream
from tests.support.waiting import wait_for

pytestmark = pytest.mark.faults

LOGS = ROOT / "test-output" / "faults" / "failover"
VERSION_FIELD = [{"type": "add_fields", "context": ["_batch_version"]}]
# Fault settings of this module: redis-server's own defaults are 15 s (cluster node
# timeout) and 30 s (Sentinel down-after); `test_defaults_outlast_default_failovers`.
NODE_TIMEOUT_MS, DOWN_AFTER_MS = 1000, 1000
# Beat's lock here; beat retries the broker for as long (10 s > a 1 s down-after + election).
BEAT_LOCK_SECONDS = 10


@pytest.fixture(scope="module")
def failover(tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[tuple[Cluster, SentinelGroup, System]]:
    folder = tmp_path_factory.mktemp("failover")
    shutil.rmtree(LOGS, ignore_errors=True)
    with ExitStack() as stack:  # each stop runs, in reverse, whatever the others do
        cluster = Cluster(folder / "cluster", node_timeout_ms=NODE_TIMEOUT_MS).start()
        stack.callback(cluster.stop)
        group = SentinelGroup(folder / "sentinel", down_after_ms=DOWN_AFTER_MS).start()
        stack.callback(group.stop)
        env = {**FAULT_ENV, "BEAT_LOCK_TIMEOUT": str(BEAT_LOCK_SECONDS),
               "STORE_URL": cluster.url}
        system = System(group.url, LOGS, **env)
        stack.callback(system.stop_all)
        system.start_all()
        yield cluster, group, system


def record(name: str, figures: dict[str, Any]) -> None:
    print(f"\n{name}: {json.dumps(figures)}")
    (LOGS / f"{name}.json").write_text(json.dumps(figures, indent=2) + "\n")


def check_readers(readers: list[Reader], sizes: dict[str, int]) -> dict[str, Any]:
    """Assert what every reader saw; return the figures."""
    for reader in readers:
        assert reader.problems == [], reader.problems
        for answer in reader.unavailable():
            assert (answer.status, answer.code, answer.retry_after) == \
                (503, "store_unavailable", "5")
        versions = [read.version for read in reader.reads]
        assert versions == sorted(versions), f"{reader.stream} went back: {versions}"
        for read in reader.reads:  # whole: every record of the version, and only of it
            assert len(read.records) == sizes[reader.stream]
            assert {r["_batch_version"] for r in read.records} == {read.version}
    down = [a.at for reader in readers for a in reader.unavailable()]
    return {"pages": sum(len(r.answers) for r in readers),
            "whole_reads": sum(len(r.reads) for r in readers),
            "answers_503": len(down),
            "unavailable_seconds": round(max(down) - min(down), 2) if down else 0.0}


def supervise(system: System, revived: set[str]) -> None:
    """Restart a Celery consumer that exited, as systemd or Kubernetes would.

    Celery 5.7 exits a consumer that loses the broker while it holds an unacknowledged
    message ("Unrecoverable error: AttributeError ... 'hostname'": the connection's
    default channel is closed twice, the second time without a transport); docs/
    deployment.md asks for a supervisor. Beat is never restarted here: it must survive.
    """
    for name in ("ingest", "worker"):
        if not system.procs[name].running:
            revived.add(name)
            system.start(name)
            system.wait_ready((name,))


def tick_times(system: System, stream: str) -> list[datetime]:
    """Return when beat sent each tick of `stream`, from its JSON log lines."""
    times = []
    for line in log_text(system, "beat").splitlines():
        if line.startswith("{") and f"Sending due task stream:{stream} " in line:
            moment = parse_time(json.loads(line)["ts"])
            if moment is not None:
                times.append(moment)
    return times


def define(api: Api, upstream: Upstream, name: str, count: int, **feed: Any) -> None:
    upstream.feed(name, catalogue(count, name), **feed)
    api.define(name, upstream.url(name), middleware=VERSION_FIELD)
    api.start(name, interval_seconds=2)


def healthz_names_down(api: Api, role: str, port: int) -> dict[str, Any] | None:
    """Return /healthz's entry of the server on `port` once it reports it down (the
    probe answers 200 all along: a liveness probe)."""
    response = api.call("GET", "/healthz")
    assert response.status_code == 200, response.text
    body, name = response.json(), f"127.0.0.1:{port}"
    node = body["nodes"].get(role, {}).get(name)
    if node is None or node["reachable"] or body["status"] != "degraded":
        return None
    assert any(name in line for line in body["failing"]), body
    return dict(node)


def published_after(api: Api, name: str, version: int) -> dict[str, Any] | None:
    """Return the first batch above `version` that published, if one has."""
    done = [b for b in api.batches(name) if b["version"] > version and b["status"] == "complete"]
    return min(done, key=lambda b: b["version"]) if done else None


def test_store_master_killed_while_a_batch_flows_and_readers_page(
        failover: tuple[Cluster, SentinelGroup, System], upstream: Upstream) -> None:
    cluster, _group, system = failover
    api = Api(system)
    victim = "victim"
    killed = cluster.master_of(StreamKeys("ds", victim).current)
    assert killed is not None
    bystander = next(name for name in (f"bystander-{i}" for i in range(100))
                     if cluster.master_of(StreamKeys("ds", name).current) is not killed)
    define(api, upstream, victim, 60, page_size=5, delay=0.1)
    define(api, upstream, bystander, 20, page_size=20)
    for name in (victim, bystander):
        wait_for(partial(api.current_version, name), what=f"{name}'s first batch")
    readers = [Reader(system.api(""), name).start() for name in (victim, victim, bystander)]
    flowing = wait_for(lambda: (b := api.status(victim)["in_progress"]) and
                       b.get("pages_received", 0) >= 3 and b, what="a batch in flight")

    killed.stop(kill=True)
    at = time.monotonic()
    wait_for(lambda: cluster.master_of(StreamKeys("ds", victim).current) not in (None, killed),
             timeout=30, what="a replica to take over")
    promoted = time.monotonic() - at
    first = wait_for(lambda: published_after(api, victim, flowing["version"]), timeout=60,
                     what="a batch after the kill to publish")
    republished = time.monotonic() - at
    wait_for(lambda: published_after(api, victim, first["version"]), timeout=30,
             what="the next one to publish too")
    for reader in readers:
        reader.stop()

    figures = check_readers(readers, {victim: 60, bystander: 20})
    in_flight = next(b for b in api.batches(victim) if b["version"] == flowing["version"])
    assert (in_flight["status"], in_flight.get("records")) in (("complete", 60),
                                                               ("failed", None))
    assert first["records"] == 60
    settled = [b["status"] for b in api.batches(victim) if b["version"] < first["version"]]
    assert set(settled) <= {"complete", "failed", "abandoned"}
    ready = api.call("GET", "/readyz")
    assert ready.status_code == 200, ready.text  # the dead master serves no slot
    started = time.monotonic()
    gone = wait_for(partial(healthz_names_down, api, "store", killed.port), timeout=30,
                    what="/healthz to name the killed master")
    assert gone["role"] in ("failed", "master")
    record("cluster-master-killed", {
        "healthz_named_it_after_seconds": round(time.monotonic() - started, 2),
        **figures, "in_flight_batch": in_flight["status"],
        "replica_promoted_after_seconds": round(promoted, 2),
        "next_publish_after_seconds": round(republished, 2)})


def test_new_versions_wait_for_a_replica_and_warn_without_one(
        failover: tuple[Cluster, SentinelGroup, System], caplog: pytest.LogCaptureFixture
        ) -> None:
    cluster, group, system = failover
    store = create_app({"REDIS_URL": group.url, "STORE_URL": cluster.url,
                        "REPLICA_WAIT_MS": 300}).extensions["store"]
    paired = [m for m in cluster.live() if cluster.replicas_of(m)
              and client(m.port).info("replication")["role"] == "master"]
    lonely, kept = paired[0], paired[1]
    dead = cluster.replicas_of(lonely)[0]
    dead.stop(kill=True)
    names = {home: next(name for name in (f"wait-{i}" for i in range(200))
                        if cluster.master_of(StreamKeys("ds", name).current) is home)
             for home in (lonely, kept)}
    def warnings() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name == "app.store.replication"]

    with caplog.at_level(logging.WARNING, logger="app.store.replication"):
        assert isinstance(store.locks.acquire_once(names[kept], "tick"), BatchLease)
        assert warnings() == []  # its replica acknowledged the new version
        started = time.monotonic()
        assert isinstance(store.locks.acquire_once(names[lonely], "tick"), BatchLease)
        waited = time.monotonic() - started
    [warning] = warnings()
    assert "no replica acknowledged" in warning and 0.3 <= waited < 3
    gone = wait_for(partial(healthz_names_down, Api(system), "store", dead.port), timeout=30,
                    what="/healthz to name the killed replica")
    assert gone["role"] in ("replica", "failed")


def test_broker_master_killed_while_beat_ticks(
        failover: tuple[Cluster, SentinelGroup, System], upstream: Upstream) -> None:
    _cluster, group, system = failover
    api, name = Api(system), "ticking"
    define(api, upstream, name, 10, page_size=10)
    wait_for(lambda: (api.current_version(name) or 0) >= 2, timeout=30, what="two ticks")
    readers = [Reader(system.api(""), name).start()]
    old_master = group.master_port()
    before = max(b["version"] for b in api.batches(name))

    group.server(old_master).stop(kill=True)
    at, revived = time.monotonic(), set[str]()

    def published(count: int) -> bool:
        supervise(system, revived)
        return len([b for b in api.batches(name)
                    if b["version"] > before and b["status"] == "complete"]) >= count

    wait_for(lambda: group.master_port() != old_master, timeout=30, what="Sentinel failover")
    promoted = time.monotonic() - at
    wait_for(partial(published, 1), timeout=60, what="a tick to publish")
    republished = time.monotonic() - at
    wait_for(partial(published, 4), timeout=60, what="ticks to go on")
    for reader in readers:
        reader.stop()

    figures = check_readers(readers, {name: 10})
    assert figures["answers_503"] == 0  # the store is elsewhere: reads never noticed
    assert system.procs["beat"].running
    assert wait_for(partial(healthz_names_down, api, "redis", old_master), timeout=30,
                    what="/healthz to name the old broker master")["role"] == "replica"
    after = sorted((b for b in api.batches(name) if b["version"] > before),
                   key=lambda b: b["version"])
    settled = {b["status"] for b in after[:-1]}
    assert settled <= {"complete", "failed", "abandoned"}, settled
    first_start = parse_time(next(b for b in api.batches(name)
                                  if b["version"] == before)["started_at"])
    ticks = [t for t in tick_times(system, name) if first_start and t >= first_start]
    gaps = [round((later - earlier).total_seconds(), 2) for earlier, later in
            itertools.pairwise(ticks)]
    assert len(after) <= len(ticks), "more batches than ticks"  # one batch per tick at most
    assert max(gaps) < 2 + promoted + 5, f"beat stopped ticking: {gaps}"
    # RedBeat's own Sentinel settings (REDIS_URL -> redbeat_redis_options) find the master.
    settings = create_app({"REDIS_URL": system.redis_url}).config["CELERY"]
    fresh = Celery(set_as_current=False)
    fresh.conf.update(settings)
    assert get_redis(fresh).ping()
    record("broker-master-killed", {
        **figures, "sentinel_failover_after_seconds": round(promoted, 2),
        "next_publish_after_seconds": round(republished, 2),
        "batches_after": [b["status"] for b in after], "consumers_restarted": sorted(revived),
        "longest_seconds_between_ticks": max(gaps)})


def test_defaults_outlast_default_failovers() -> None:
    """The fault settings above are shrunk; at the defaults the same relations hold."""
    cluster_failover, sentinel_failover = 15 + 5, 30 + 10  # redis defaults + election
    backoffs = [min(2 ** n, defaults.STORE_RETRY_BACKOFF_MAX)
                for n in range(defaults.STORE_RETRIES)]
    assert sum(backoffs) > 2 * max(cluster_failover, sentinel_failover)
    assert sentinel_failover < defaults.BEAT_LOCK_TIMEOUT  # beat retries that long
    assert BEAT_LOCK_SECONDS > DOWN_AFTER_MS / 1000 + 5  # the same relation in this module
