"""Faults 3 and 9: Redis restarted under the running system; an evicting Redis warned of."""

from __future__ import annotations

import time
from collections.abc import Iterator
from functools import partial

import pytest

from devtools.redis_server import RedisServer, free_port
from devtools.system import System
from tests.faults.conftest import catalogue, launch, log_text
from tests.integration.conftest import Api
from tests.support.upstream import Upstream
from tests.support.waiting import wait_for

pytestmark = pytest.mark.faults


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
