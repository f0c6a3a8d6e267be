"""Faults 1, 2 and 8: a worker or an ingest consumer killed mid-batch, a stuck upstream."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from app.store.keys import StreamKeys
from app.store.locks import StreamLocks
from devtools.system import System
from tests.faults.conftest import catalogue, launch
from tests.integration.conftest import Api
from tests.support.seed import Batch
from tests.support.upstream import Upstream
from tests.support.waiting import wait_for

pytestmark = pytest.mark.faults

LOCK_SECONDS = 9  # FETCH_HARD_TIME_LIMIT + LOCK_SLACK_SECONDS of FAULT_ENV


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


def test_worker_killed_mid_batch(system: System, api: Api, upstream: Upstream,
                                 name: str) -> None:
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
    system.start("worker")
    system.wait_ready(("worker",))

    fresh = wait_for(lambda: (v := api.current_version(name)) and v > victim and v,
                     timeout=30, what="a complete batch after the kill")
    recovered = time.monotonic() - killed_at
    api.stop(name)
    assert api.read_all(name) == (fresh, catalogue(60, "new"))
    assert batch(api, name, fresh)["records"] == 60
    orphan = wait_for(lambda: (b := batch(api, name, victim))["status"] != "running" and b,
                      what="the orphan to end")
    assert orphan["status"] in ("failed", "abandoned")
    assert recovered < LOCK_SECONDS + 2 + 6, f"stream stuck {recovered:.1f}s"
    wait_for(lambda: staging_gone(system, name, victim), timeout=10, what="staging expiry")
    print(f"\nworker kill: recovered in {recovered:.1f}s, orphan {orphan['status']}")


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
    print(f"\ningest kill: version {fresh} (victim {victim}) published in {recovered:.1f}s")


def test_redelivered_pages_count_once(system: System, api: Api, upstream: Upstream,
                                      name: str) -> None:
    upstream.feed(name, [], page_size=10)
    api.define(name, upstream.url(name))
    seeded = Batch(StreamLocks(system.redis, "ds", 9000), system.celery, name)
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
