"""Faults 4 and 5: two beats and two workers at once; 50 concurrent start/stop calls."""

from __future__ import annotations

import itertools
import random
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import pytest

from app.store.keys import StreamKeys
from app.store.locks import BatchLease, StreamLocks
from devtools.system import BEAT_LOCK_KEY, System
from tests.faults.conftest import catalogue, launch, log_text
from tests.integration.conftest import Api
from tests.support.seed import Batch
from tests.support.upstream import Upstream
from tests.support.waiting import wait_for

pytestmark = pytest.mark.faults

PROCS = ("web", "ingest", "worker", "worker-2", "beat", "beat-2")
SCHEDULE_KEY = "{redbeat}::schedule"


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    server, running = launch(tmp_path_factory.mktemp("races"), "races", names=PROCS)
    yield running
    running.stop_all()
    server.stop()


@pytest.fixture
def api(system: System) -> Api:
    return Api(system)


def ticks(system: System, name: str) -> int:
    """Count the fetches of `name` that any beat sent."""
    pattern = re.compile(rf"Sending due task stream:{re.escape(name)} ")
    return sum(len(pattern.findall(log_text(system, beat))) for beat in ("beat", "beat-2"))


def skips(system: System, name: str, reason: str = "batch_in_flight") -> int:
    """Count the fetches of `name` that were skipped for `reason`."""
    pattern = re.compile(rf"fetch skipped stream={re.escape(name)} reason={reason}")
    return sum(len(pattern.findall(log_text(system, w))) for w in ("worker", "worker-2"))


def active_beat(system: System) -> str:
    return next(b for b in ("beat", "beat-2") if "Acquired lock" in log_text(system, b))


def test_two_beats_two_workers_one_batch_per_tick(system: System, api: Api,
                                                  upstream: Upstream, name: str) -> None:
    upstream.feed(name, catalogue(20, "x"), page_size=10)
    api.define(name, upstream.url(name))
    api.start(name, interval_seconds=2, run_now=False)
    wait_for(lambda: len(api.batches(name)) >= 3, timeout=20, what="three ticks")
    leader = active_beat(system)
    system.procs[leader].kill()
    killed_at = time.monotonic()
    before = len(api.batches(name))
    wait_for(lambda: len(api.batches(name)) > before, timeout=20, what="the standby beat")
    takeover = time.monotonic() - killed_at
    wait_for(lambda: len(api.batches(name)) >= before + 3, timeout=20, what="more ticks")
    api.stop(name)
    wait_for(lambda: api.status(name)["in_progress"] is None, what="the last batch")

    batches = api.batches(name)
    sent = ticks(system, name)
    assert len(batches) == sent - skips(system, name), (len(batches), sent)
    assert all(b["status"] == "complete" for b in batches)
    assert [b["version"] for b in batches] == list(range(len(batches), 0, -1))
    starts = sorted(b["started_at"] for b in batches)
    assert len(set(starts)) == len(starts)
    print(f"\ntwo beats: {sent} ticks, {len(batches)} batches, standby took over in "
          f"{takeover:.1f}s (BEAT_LOCK_TIMEOUT 5s)")
    system.start(leader)
    system.wait_ready((leader,))
    assert system.redis.exists(BEAT_LOCK_KEY)


def test_duplicated_fetch_runs_one_batch(system: System, api: Api, upstream: Upstream,
                                         name: str) -> None:
    upstream.feed(name, catalogue(20, "x"), page_size=5, delay=0.1)
    api.define(name, upstream.url(name))
    for _ in range(4):  # one tick delivered four times (same task id), to both workers
        system.celery.send_task("ds.fetch.stream", args=[name], queue="fetch",
                                task_id=f"tick-{name}")

    wait_for(lambda: api.current_version(name), what="the batch")
    wait_for(lambda: skips(system, name, "duplicate") + skips(system, name) == 3,
             what="three skipped duplicates")
    assert [b["version"] for b in api.batches(name)] == [1]
    for _ in range(3):  # three distinct ticks at once: never two batches in flight
        system.celery.send_task("ds.fetch.stream", args=[name], queue="fetch")
    wait_for(lambda: len(api.batches(name)) + skips(system, name) >= 4 and
             api.status(name)["in_progress"] is None, what="the three ticks")
    spans = sorted((b["started_at"], b["finished_at"]) for b in api.batches(name))
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans)), spans


def _late_batch(system: System, name: str, records: list[Any]) -> tuple[Batch, Any]:
    """Begin a batch, and lose its lease (as a dead worker's lease lapses)."""
    batch = Batch(StreamLocks(system.redis, "ds", 30_000), system.celery, name)
    system.redis.delete(StreamKeys("ds", name).lock)

    def finish() -> None:
        batch.page(records)
        batch.complete()
    return batch, finish


def test_late_batch_never_publishes_over_a_newer_one(system: System, api: Api,
                                                     upstream: Upstream, name: str) -> None:
    upstream.feed(name, catalogue(10, "new"), page_size=10)
    api.define(name, upstream.url(name))
    stale, finish_stale = _late_batch(system, name, catalogue(3, "late"))
    api.start(name, interval_seconds=600)
    newer = wait_for(lambda: api.current_version(name), what="the newer batch")
    api.stop(name)
    finish_stale()
    superseded, finish_superseded = _late_batch(system, name, catalogue(3, "late"))
    holder = StreamLocks(system.redis, "ds", 30_000).acquire_once(name, f"holder-{name}")
    assert isinstance(holder, BatchLease)  # its begin never comes
    finish_superseded()

    def ended(version: int) -> dict[str, Any] | None:
        row = api.call("GET", f"/streams/{name}/batches/{version}").json().get("batch")
        return row if row and row["status"] != "running" else None

    # Each late batch lost its lease: the batch that took the lease over ended it.
    for late, verdict in ((stale, "stale"), (superseded, "superseded")):
        row = wait_for(partial(ended, late.version), what=f"{verdict} batch")
        assert row["status"] == "abandoned"
        assert row["error"]["kind"] == "worker_lost"
    assert newer > stale.version
    assert api.current_version(name) == newer
    assert api.read_all(name)[1] == catalogue(10, "new")
    StreamLocks(system.redis, "ds", 30_000).release(holder)


def test_concurrent_start_and_stop_stay_consistent(system: System, api: Api,
                                                   upstream: Upstream, name: str) -> None:
    upstream.feed(name, catalogue(3, "x"), page_size=10)
    api.define(name, upstream.url(name))
    rng = random.Random(5)
    key = f"{{redbeat}}:stream:{name}"

    def call(action: str) -> tuple[int, dict[str, Any]]:
        body = {"interval_seconds": rng.choice([1, 2, 60])} if action == "start" else {}
        response = api.call("POST", f"/streams/{name}/{action}", json=body)
        return response.status_code, response.json()

    for _ in range(3):
        actions = [rng.choice(["start", "stop"]) for _ in range(50)]
        with ThreadPoolExecutor(max_workers=50) as pool:
            answers = list(pool.map(call, actions))
        assert {status for status, _ in answers} == {200}, answers
        for action, (_, body) in zip(actions, answers, strict=True):
            assert body["state"] == ("running" if action == "start" else "stopped")
        state = api.status(name)["state"]
        entry = bool(system.redis.exists(key))
        scheduled = system.redis.zscore(SCHEDULE_KEY, key) is not None
        assert (entry, scheduled) == (state == "running",) * 2, (state, entry, scheduled)
    api.stop(name)
    assert not system.redis.exists(key)
    assert system.redis.zscore(SCHEDULE_KEY, key) is None
