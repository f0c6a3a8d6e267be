"""Faults 3 and 9: Redis restarted under the running system (mid-batch, under an active and
a standby beat); an evicting Redis warned of."""

from __future__ import annotations

import random
import re
import time
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest

from config import defaults
from devtools.redis_server import RedisServer, free_port
from devtools.system import System
from tests.faults.conftest import catalogue, launch, log_text
from tests.integration.conftest import Api
from tests.support.upstream import Upstream
from tests.support.waiting import wait_for

pytestmark = pytest.mark.faults

LEASE = defaults.LEASE_TTL_SECONDS  # the fault tests keep the lease at its defaults
OUTAGE = 5  # seconds Redis is down mid-batch: longer than the broker's publish retries


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RedisServer, System]]:
    server, system = launch(tmp_path_factory.mktemp("redis"), "redis")
    yield server, system
    system.stop_all()
    server.stop()


def test_redis_restart_loses_nothing_and_everyone_reconnects(
        running: tuple[RedisServer, System], upstream: Upstream, name: str) -> None:
    server, system = running
    api = Api(system)
    upstream.feed(name, catalogue(25, "kept"), page_size=10)
    api.define(name, upstream.url(name))
    api.define(f"{name}-idle", upstream.url(name))
    api.start(name, interval_seconds=2)
    before = wait_for(lambda: api.current_version(name), what="first batch")
    schedule = api.status(name)

    server.restart()
    restarted_at = time.monotonic()

    status = wait_for(lambda: _status(api, name), timeout=20, what="web to reconnect")
    assert status["state"] == "running"
    assert status["interval_seconds"] == schedule["interval_seconds"]
    assert api.status(f"{name}-idle")["state"] == "stopped"
    assert api.read_all(name)[1] == catalogue(25, "kept")
    upstream.feed(name, catalogue(30, "after"), page_size=10)
    after = wait_for(lambda: (v := api.current_version(name)) and v > before and
                     api.read_all(name)[1] == catalogue(30, "after") and v,
                     timeout=40, what="a tick after the restart")
    recovered = time.monotonic() - restarted_at
    api.stop(name)
    assert all(proc.running for proc in system.procs.values())
    print(f"\nredis restart: next batch {after} published {recovered:.1f}s after the restart")


def test_redis_restart_mid_batch_frees_the_stream_within_a_lease(
        running: tuple[RedisServer, System], upstream: Upstream, name: str) -> None:
    server, system = running
    api = Api(system)
    upstream.feed(name, catalogue(60, "slow"), page_size=6, delay=0.3)
    api.define(name, upstream.url(name))
    api.start(name, interval_seconds=2)
    victim = wait_for(lambda: (b := api.status(name)["in_progress"]) and
                      b.get("pages_received", 0) >= 2 and b["version"], timeout=20,
                      what="a batch in flight")

    server.stop()
    time.sleep(OUTAGE)  # the length of the outage, not a synchronisation
    server.start()
    restarted_at = time.monotonic()

    fresh = wait_for(lambda: (v := _current(api, name)) and v > victim and v,
                     timeout=LEASE + 40, what="a whole batch after the restart")
    recovered = time.monotonic() - restarted_at
    api.stop(name)
    ended = wait_for(lambda: (b := _batch(api, name, victim)) and b["status"] != "running" and b,
                     timeout=10, what="the batch in flight to end")
    assert api.read_all(name) == (fresh, catalogue(60, "slow"))
    assert recovered < 60, f"stream stalled {recovered:.1f}s after the restart"
    skipped = len(re.findall(rf"fetch skipped stream={re.escape(name)} reason=batch_in_flight",
                             log_text(system, "worker")))
    assert skipped <= LEASE // 2 + 2  # ticks every 2 s only while the lease lived
    print(f"\nredis down {OUTAGE} s mid-batch: batch {victim} ended {ended['status']} "
          f"({(ended.get('error') or {}).get('kind')}); version {fresh} published "
          f"{recovered:.1f}s after the restart; {skipped} ticks skipped as batch_in_flight")


def test_beats_ride_out_redis_restarts_active_and_standby(
        running: tuple[RedisServer, System], upstream: Upstream, name: str) -> None:
    server, system = running
    api = Api(system)
    upstream.feed(name, catalogue(5, "tick"), page_size=10)
    api.define(name, upstream.url(name))
    system.start("beat-3")  # a standby: "beat" holds the lock
    api.start(name, interval_seconds=1)
    rng = random.Random(13)

    for _ in range(3):  # at different moments of the beats' loops
        before = wait_for(lambda: _current(api, name), what="a version")
        time.sleep(rng.uniform(0.0, 1.0))  # the moment of the restart, not a synchronisation
        server.restart()
        assert system.procs["beat"].running and system.procs["beat-3"].running
        wait_for(partial(_reached, api, name, before + 2), timeout=30,
                 what="ticks after the restart")

    system.procs["beat"].kill()  # the standby now waits for the dead beat's lock ...
    server.restart()  # ... and Redis restarts while it waits
    restarted_at = time.monotonic()
    before = wait_for(lambda: _current(api, name), timeout=20, what="a version")
    wait_for(partial(_reached, api, name, before + 2), timeout=40,
             what="the standby to take over and tick")
    took_over = time.monotonic() - restarted_at
    api.stop(name)
    assert system.procs["beat-3"].running
    assert "Acquired lock" in log_text(system, "beat-3")
    assert "Traceback" not in log_text(system, "beat-3")
    system.start("beat")
    print(f"\nbeats: 3 restarts under an active and a standby beat, both kept running; "
          f"standby took over {took_over:.1f}s after a restart during its wait "
          f"(BEAT_LOCK_TIMEOUT 5 s)")


def _current(api: Api, name: str) -> int | None:
    status = _status(api, name)
    return status["current_version"] if status else None  # type: ignore[return-value]


def _reached(api: Api, name: str, version: int) -> bool:
    return (_current(api, name) or 0) >= version


def _batch(api: Api, name: str, version: int) -> dict[str, Any] | None:
    try:
        response = api.call("GET", f"/streams/{name}/batches/{version}")
    except OSError:
        return None
    return response.json()["batch"] if response.status_code == 200 else None


def _warned(system: System, proc: str) -> bool:
    return "maxmemory-policy is 'allkeys-lru'" in log_text(system, proc)


def _status(api: Api, name: str) -> dict[str, object] | None:
    try:
        response = api.call("GET", f"/streams/{name}")
    except OSError:
        return None
    return response.json() if response.status_code == 200 else None


def test_services_warn_when_redis_may_evict(running: tuple[RedisServer, System]) -> None:
    _server, system = running
    system.redis.config_set("maxmemory-policy", "allkeys-lru")
    try:
        system.procs["beat"].stop()
        for proc in ("worker-2", "ingest-2", "beat-2"):
            system.start(proc)
        system.start("web-2", PORT=str(free_port()))
        for proc in ("web-2", "worker-2", "ingest-2", "beat-2"):
            wait_for(partial(_warned, system, proc), timeout=30, what=f"{proc} to warn")
        for proc in ("web", "worker", "ingest"):
            assert "maxmemory-policy is" not in log_text(system, proc)
    finally:
        system.redis.config_set("maxmemory-policy", "noeviction")
