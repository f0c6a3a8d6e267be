"""Fixtures of the integration tests: a real redis-server, the real processes of the
Procfile (web, ingest, worker, beat), all on 127.0.0.1; the fake upstream (`upstream`,
in tests/conftest.py) is a real HTTP server too. `cluster_system` is a second set of
processes whose store is a Redis Cluster of three masters with a replica each (its
broker a redis-server of its own), started only when a test asks for it.

The processes start once per session; each test uses its own stream names and the
data-streams keys are deleted after each test (Celery's own keys stay, as in production).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import requests

from devtools.redis_cluster import Cluster
from devtools.redis_server import RedisServer
from devtools.system import System

ROOT = Path(__file__).resolve().parents[2]
_names = itertools.count(1)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def system(redis_server: RedisServer) -> Iterator[System]:
    log_dir = ROOT / "test-output" / "integration"
    running = System(redis_server.url, log_dir).start_all()
    yield running
    running.stop_all()


@pytest.fixture(scope="session")
def cluster_system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    folder = tmp_path_factory.mktemp("cluster")
    with ExitStack() as stack:  # each stop runs, in reverse, whatever the others do
        cluster = Cluster(folder / "cluster").start()
        stack.callback(cluster.stop)
        broker = RedisServer(folder / "broker").start()
        stack.callback(broker.stop)
        running = System(broker.url, ROOT / "test-output" / "integration-cluster",
                         STORE_URL=cluster.url)
        stack.callback(running.stop_all)
        running.start_all()
        yield running


@pytest.fixture
def api(system: System) -> Iterator[Api]:
    yield from serve(system)


def serve(system: System) -> Iterator[Api]:
    """Yield a client of `system`; then delete the test's keys and schedule entries."""
    client = Api(system)
    yield client
    for key in system.store.scan_iter("ds:*", count=1000):
        system.store.delete(key)
    for key in system.redis.scan_iter("{redbeat}:stream:*"):
        system.redis.zrem("{redbeat}::schedule", key)
        system.redis.delete(key)


@pytest.fixture
def name(request: pytest.FixtureRequest) -> str:
    """Return a stream name unique to this test."""
    base = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40]
    return f"{base}-{next(_names)}"


class Api:
    """A thin client of the real web process."""

    def __init__(self, system: System) -> None:
        self.system = system
        self.http = requests.Session()

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.http.request(method, self.system.api(path), timeout=10, **kwargs)

    def define(self, name: str, url: str, **fields: Any) -> dict[str, Any]:
        body = {"source": {"url": url, "records_path": "data",
                           "pagination": {"type": "next_url", "next_url_path": "next"}},
                "key": "id", **fields}
        response = self.call("PUT", f"/streams/{name}", json=body)
        assert response.status_code in (200, 201), response.text
        return response.json()

    def start(self, name: str, **body: Any) -> dict[str, Any]:
        response = self.call("POST", f"/streams/{name}/start", json=body)
        assert response.status_code == 200, response.text
        return response.json()

    def stop(self, name: str, **body: Any) -> dict[str, Any]:
        response = self.call("POST", f"/streams/{name}/stop", json=body)
        assert response.status_code == 200, response.text
        return response.json()

    def status(self, name: str) -> dict[str, Any]:
        return self.call("GET", f"/streams/{name}").json()

    def batches(self, name: str) -> list[dict[str, Any]]:
        return self.call("GET", f"/streams/{name}/batches").json()["batches"]

    def current_version(self, name: str) -> int | None:
        return self.status(name)["current_version"]

    def read_all(self, name: str, limit: int = 100, **params: Any) -> tuple[int, list[Any]]:
        """Page through a whole version with cursors; return (version, records)."""
        records: list[Any] = []
        cursor = None
        versions = set()
        for _ in range(10_000):
            query = {"limit": limit, **params, **({"cursor": cursor} if cursor else {})}
            response = self.call("GET", f"/streams/{name}/data", params=query)
            assert response.status_code == 200, response.text
            body = response.json()
            versions.add(body["version"])
            records += body["records"]
            cursor = body["next_cursor"]
            if cursor is None:
                break
        assert len(versions) == 1, f"one read mixed versions {versions}"
        return versions.pop(), records
