"""Fault 10: Redis full (maxmemory, noeviction) under the running system, at the defaults."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from config import defaults
from devtools.redis_server import RedisServer, free_port
from devtools.run import embedded_redis
from devtools.system import System
from tests.faults.conftest import catalogue, log_text
from tests.integration.conftest import Api
from tests.support.upstream import Upstream
from tests.support.waiting import wait_for

pytestmark = pytest.mark.faults

ROOT = Path(__file__).resolve().parents[2]
MIB = 1024 * 1024


def test_make_run_redis_refuses_writes_beyond_its_maxmemory(tmp_path: Path) -> None:
    server = embedded_redis(tmp_path, {"REDIS_PORT": str(free_port())}).start()
    try:
        config = redis.Redis(port=server.port, decode_responses=True).config_get("maxmemory*")
    finally:
        server.stop()
    assert config["maxmemory"] == str(1024 * MIB)
    assert config["maxmemory-policy"] == "noeviction"


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RedisServer, System]]:
    """Every process at its default settings, beat included, on a Redis whose maxmemory
    tests set; each test triggers its batches with start (interval one hour)."""
    server = RedisServer(tmp_path_factory.mktemp("store-full")).start()
    log_dir = ROOT / "test-output" / "faults" / "store_full"
    shutil.rmtree(log_dir, ignore_errors=True)
    system = System(server.url, log_dir)
    try:
        system.start_all()
    except BaseException:
        system.stop_all()
        server.stop(kill=True)
        raise
    yield server, system
    system.stop_all()
    server.stop()


def limit(system: System, headroom: int) -> int:
    """Let Redis grow `headroom` bytes beyond what it holds now (a negative headroom: it is
    full and refuses writes); return the limit."""
    wait_for(lambda: system.redis.info("memory")["lazyfree_pending_objects"] == 0,
             what="memory unlinked in the background to be freed")
    used = int(system.redis.info("memory")["used_memory"])
    system.redis.config_set("maxmemory", used + headroom)
    return used + headroom


def settled_after(api: Api, name: str, version: int) -> dict[str, Any]:
    return wait_for(lambda: (b := api.batches(name)) and b[0]["version"] > version and
                    b[0]["status"] != "running" and b[0], timeout=60,
                    what=f"a batch after {version} to end")


def test_a_batch_that_fills_redis_fails_store_full_and_the_api_says_503(
        full: tuple[RedisServer, System], upstream: Upstream, name: str) -> None:
    _, system = full
    api = Api(system)
    upstream.feed(name, catalogue(20, "small"), page_size=10)
    api.define(name, upstream.url(name))
    api.start(name, interval_seconds=3600)
    first = wait_for(lambda: api.current_version(name), what="first batch")
    wide = [{**record, "text": "x" * 500} for record in catalogue(40_000, "wide")]
    upstream.feed(name, wide, page_size=1000)  # about 22 MB of records
    limit(system, 8 * MIB)

    api.stop(name)
    api.start(name, interval_seconds=3600)
    failed = settled_after(api, name, first)

    assert failed["status"] == "failed"
    assert failed["error"]["kind"] == "store_full"
    assert api.read_all(name) == (first, catalogue(20, "small"))
    assert api.status(name)["in_progress"] is None  # the stream is free again
    limit(system, -MIB)  # full
    refused = api.call("PUT", f"/streams/{name}-new", json={
        "source": {"url": upstream.url(name)}})
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "store_full"
    assert api.call("POST", f"/streams/{name}/start").json()["error"]["code"] == "store_full"
    assert api.read_all(name) == (first, catalogue(20, "small"))  # reads still work
    limit(system, 64 * MIB)
    upstream.feed(name, catalogue(20, "after"), page_size=10)
    api.stop(name)
    api.start(name, interval_seconds=3600)
    published = settled_after(api, name, failed["version"])
    assert published["status"] == "complete"
    assert api.read_all(name) == (published["version"], catalogue(20, "after"))
    assert all(proc.running for proc in system.procs.values())
    api.stop(name)
    print(f"\nstore full: batch {failed['version']} failed store_full after "
          f"{failed['records_received']} records; PUT and start answered 503 store_full "
          f"while reads answered 200; batch {published['version']} published after")


def test_a_batch_in_flight_when_redis_fills_fails_and_every_process_rides_it_out(
        full: tuple[RedisServer, System], upstream: Upstream, name: str) -> None:
    _, system = full
    api = Api(system)
    feed = upstream.feed(name, catalogue(20, "before"), page_size=10)
    api.define(name, upstream.url(name))
    api.start(name, interval_seconds=3600)
    first = wait_for(lambda: api.current_version(name), what="first batch")
    feed.records, feed.delay = catalogue(200, "slow"), 0.3  # 20 pages, 6 s
    api.stop(name)
    api.start(name, interval_seconds=3600)
    wait_for(lambda: (b := api.status(name)["in_progress"]) and b["pages_received"] >= 2,
             what="the slow batch under way")

    # Full while the batch runs, whatever client buffers Redis shrinks meanwhile (its
    # used_memory counts them: 1 MiB below it let a page in now and then).
    system.redis.config_set("maxmemory", 1)
    failed = settled_after(api, name, first)
    # beat ticks every BEAT_MAX_LOOP_INTERVAL; a full Redis may refuse its tick (it then
    # logs "Redis refused the tick" and retries). Watch three ticks: nothing may exit.
    stays_full = time.monotonic() + 3 * defaults.BEAT_MAX_LOOP_INTERVAL + 1
    while time.monotonic() < stays_full:  # bounded observation window of the full Redis
        assert all(proc.running for proc in system.procs.values())
        time.sleep(0.5)
    beat_refused = "Redis refused the tick" in log_text(system, "beat")
    limit(system, 64 * MIB)

    assert failed["status"] == "failed" and failed["error"]["kind"] == "store_full"
    assert api.read_all(name) == (first, catalogue(20, "before"))
    feed.records, feed.delay = catalogue(20, "after"), 0.0
    api.stop(name)
    api.start(name, interval_seconds=3600)
    published = settled_after(api, name, failed["version"])
    assert published["status"] == "complete"
    assert api.read_all(name) == (published["version"], catalogue(20, "after"))
    assert all(proc.running for proc in system.procs.values())
    api.stop(name)
    print(f"\nfull while a batch ran: batch {failed['version']} failed store_full after "
          f"{failed.get('pages_received', 0)} pages; web, worker, ingest and beat kept "
          f"running (beat {'met' if beat_refused else 'did not meet'} a refused tick); "
          f"batch {published['version']} published once Redis had room")
