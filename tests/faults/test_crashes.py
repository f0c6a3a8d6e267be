"""Faults 1, 2 and 8: a worker or an ingest consumer killed mid-batch, a stuck upstream."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from app.store.keys import StreamKeys
from app.store.locks import StreamLocks
from config import defaults
from config.settings import timing
from devtools.system import System
from tests.faults.conftest import FAULT_ENV, catalogue, launch, log_text
from tests.integration.conftest import Api
from tests.support.seed import Batch
from tests.support.upstream import Upstream
from tests.support.waiting import stays, wait_for

pytestmark = pytest.mark.faults

LEASE = defaults.LEASE_TTL_SECONDS  # the fault tests keep the lease at its defaults


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    server, running = launch(tmp_path_factory.mktemp("crashes"), "crashes")
    yield running
    running.stop_all()
    server.stop()


@pytest.fixture
def api(system: System) -> Api:
    return Api(system)


def running_batch(api: Api, name: str, after: int, pages: int) -> dict[str, Any]:
    """Wait until a batch newer than `after` has stored at least `pages` pages."""
    return wait_for(lambda: (b := api.status(name)["in_progress"]) and b["version"] > after
                    and b.get("pages_received", 0) >= pages and b, timeout=20,
                    what=f"a batch after {after} with {pages} pages")


def batch(api: Api, name: str, version: int) -> dict[str, Any]:
    return api.call("GET", f"/streams/{name}/batches/{version}").json()["batch"]


def staging_gone(system: System, name: str, version: int) -> bool:
    keys = StreamKeys("ds", name)
    return not system.redis.exists(keys.records(version), keys.pages(version))


def restart(system: System, proc: str) -> None:
    system.start(proc)
    system.wait_ready((proc,))


def test_worker_killed_mid_batch_frees_its_stream_within_a_lease(
        system: System, api: Api, upstream: Upstream, name: str) -> None:
    upstream.feed(name, catalogue(30, "old"), page_size=10)
    api.define(name, upstream.url(name))
    api.start(name, interval_seconds=2)
    first = wait_for(lambda: api.current_version(name), what="first batch")
    upstream.feed(name, catalogue(60, "new"), page_size=6, delay=0.3)
    victim = running_batch(api, name, first, pages=2)["version"]

    system.procs["worker"].kill()
    killed_at = time.monotonic()
    upstream.feed(name, catalogue(60, "new"), page_size=6)
    assert api.current_version(name) == first
    assert api.read_all(name)[1] == catalogue(30, "old")
    restart(system, "worker")

    fresh = wait_for(lambda: (v := api.current_version(name)) and v > victim and v,
                     timeout=LEASE + 30, what="a complete batch after the kill")
    recovered = time.monotonic() - killed_at
    api.stop(name)
    assert api.read_all(name) == (fresh, catalogue(60, "new"))
    assert batch(api, name, fresh)["records"] == 60
    orphan = batch(api, name, victim)
    assert orphan["status"] == "abandoned"
    assert orphan["error"]["kind"] == "worker_lost"
    assert "lease lapsed" in orphan["error"]["message"]
    assert recovered < 60, f"stream stuck {recovered:.1f}s"
    wait_for(lambda: staging_gone(system, name, victim), timeout=10, what="staging expiry")
    print(f"\nworker kill at the default lease ({LEASE} s): next version published "
          f"{recovered:.1f}s after the kill, orphan {orphan['status']} "
          f"({orphan['error']['kind']})")


def test_stop_with_cancel_ends_an_orphan_at_once(system: System, api: Api,
                                                upstream: Upstream, name: str) -> None:
    upstream.feed(name, catalogue(60, "x"), page_size=6, delay=0.3)
    api.define(name, upstream.url(name))
    api.start(name, interval_seconds=600)
    victim = running_batch(api, name, 0, pages=2)["version"]
    system.procs["worker"].kill()
    restart(system, "worker")

    stopped = api.stop(name, cancel=True)
    assert stopped["cancelled_version"] == victim
    assert batch(api, name, victim)["status"] == "cancelled"
    upstream.feed(name, catalogue(60, "x"), page_size=30)
    started = time.monotonic()
    api.start(name, interval_seconds=600)
    fresh = wait_for(lambda: api.current_version(name), timeout=15, what="a batch at once")
    took = time.monotonic() - started
    api.stop(name)
    assert fresh > victim
    assert f"fetch skipped stream={name} reason=batch_in_flight" not in log_text(system,
                                                                                 "worker")
    print(f"\ncancelled orphan {victim}; the next start published {fresh} in {took:.1f}s")


def test_ingest_killed_mid_batch(system: System, api: Api, upstream: Upstream,
                                 name: str) -> None:
    upstream.feed(name, catalogue(30, "old"), page_size=10)
    api.define(name, upstream.url(name))
    api.start(name, interval_seconds=600)
    first = wait_for(lambda: api.current_version(name), what="first batch")
    upstream.feed(name, catalogue(60, "new"), page_size=6, delay=0.3)
    api.stop(name)
    api.start(name, interval_seconds=600)
    victim = running_batch(api, name, first, pages=2)["version"]

    system.procs["ingest"].kill()
    killed_at = time.monotonic()
    assert api.current_version(name) == first
    system.start("ingest")
    system.wait_ready(("ingest",))

    fresh = wait_for(lambda: (v := api.current_version(name)) and v > first and v,
                     timeout=40, what="a complete batch after the kill")
    recovered = time.monotonic() - killed_at
    api.stop(name)
    published = batch(api, name, fresh)
    assert api.read_all(name) == (fresh, catalogue(60, "new"))
    assert published["records"] == published["records_received"] == 60
    assert published["pages_received"] == published["expected_pages"] == 10
    limits = timing({})  # VISIBILITY_TIMEOUT is shrunk here; staging outlives it as shrunk
    assert limits.staging > limits.visibility + limits.restore_interval + limits.hard_limit
    print(f"\ningest kill: version {fresh} (victim {victim}) published in {recovered:.1f}s")


def test_ingest_back_after_the_staging_expired_never_publishes_a_part(
        system: System, api: Api, upstream: Upstream, name: str) -> None:
    upstream.feed(name, catalogue(30, "old"), page_size=10)
    api.define(name, upstream.url(name))
    api.start(name, interval_seconds=600)
    first = wait_for(lambda: api.current_version(name), what="first batch")
    api.stop(name)
    upstream.feed(name, catalogue(60, "new"), page_size=6, delay=0.3)
    api.start(name, interval_seconds=600)
    victim = running_batch(api, name, first, pages=2)["version"]
    api.stop(name)  # no tick may end the batch: it waits for its pages

    system.procs["ingest"].kill()
    fetched = f"batch fetched stream={name} version={victim} "
    wait_for(lambda: fetched in log_text(system, "worker"), timeout=20,
             what="the fetch to send every page")
    wait_for(lambda: staging_gone(system, name, victim), timeout=timing(FAULT_ENV).staging + 10,
             what="the staging data to expire")
    restart(system, "ingest")

    ended = wait_for(lambda: (b := batch(api, name, victim))["status"] != "running" and b,
                     timeout=30, what="the batch to end")
    assert ended["status"] == "failed"
    assert ended["error"]["kind"] == "staging_expired"
    stays(lambda: api.current_version(name) == first, 2, what="the old version served")
    assert api.read_all(name) == (first, catalogue(30, "old"))
    upstream.feed(name, catalogue(60, "new"), page_size=30)
    api.start(name, interval_seconds=600)
    fresh = wait_for(lambda: (v := api.current_version(name)) and v > victim and v,
                     timeout=20, what="a whole batch once ingest is back")
    api.stop(name)
    assert api.read_all(name) == (fresh, catalogue(60, "new"))
    limits = timing({})
    assert limits.staging > limits.visibility + limits.restore_interval + limits.hard_limit
    print(f"\ningest back after staging expiry: batch {victim} failed "
          f"({ended['error']['kind']}); {fresh} published whole")




def test_redelivered_pages_count_once(system: System, api: Api, upstream: Upstream,
                                      name: str) -> None:
    upstream.feed(name, [], page_size=10)
    api.define(name, upstream.url(name))
    seeded = Batch(StreamLocks(system.redis, "ds", LEASE * 1000), system.celery, name)
    pages = {1: catalogue(3, "a"), 2: catalogue(6, "a")[3:]}

    for number in (1, 2, 1, 2, 1):
        seeded.page(pages[number], number)
    seeded.complete(pages=2, records=6)
    seeded.page(pages[2], 2)

    wait_for(lambda: api.current_version(name) == seeded.version, what="publish")
    published = batch(api, name, seeded.version)
    assert (published["pages_received"], published["records_received"]) == (2, 6)
    assert api.read_all(name)[1] == catalogue(6, "a")


def test_stuck_upstream_times_out_and_frees_the_lock(system: System, api: Api,
                                                     upstream: Upstream, name: str) -> None:
    upstream.feed(name, catalogue(5, "x"), delay=30)
    body = {"source": {"url": upstream.url(name), "records_path": "data", "read_timeout": 60,
                       "max_attempts": 1,
                       "pagination": {"type": "next_url", "next_url_path": "next"}},
            "key": "id"}
    assert api.call("PUT", f"/streams/{name}", json=body).status_code == 201
    api.start(name, interval_seconds=600)
    started = time.monotonic()

    failed = wait_for(lambda: (b := api.batches(name)) and b[0]["status"] == "failed" and b[0],
                      timeout=20, what="the batch to fail")
    took = time.monotonic() - started
    assert failed["error"]["kind"] == "timeout"
    assert api.status(name)["in_progress"] is None
    assert system.redis.get(StreamKeys("ds", name).lock) is None
    upstream.feed(name, catalogue(5, "x"))
    api.stop(name)
    api.start(name, interval_seconds=600)
    wait_for(lambda: api.current_version(name), what="a batch once the upstream answers")
    api.stop(name)
    print(f"\nstuck upstream: failed (timeout) after {took:.1f}s, soft limit 5s")
