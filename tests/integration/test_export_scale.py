"""100k records on a real redis-server: change-set cost at publish, flat-memory exports
(plain and gzip-compressed as they stream).

The app runs in-process (Flask test client) so tracemalloc sees every allocation the
web side makes while it streams a whole version.
"""

from __future__ import annotations

import time
import tracemalloc
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from app import create_app
from app.extensions import Store
from config.streams import StreamDefinition
from devtools.redis_server import RedisServer
from tests.support.seed import Seeder

pytestmark = pytest.mark.integration
N = 100_000
PAGE = 10_000
PREFIX = "dsscale"


def record(i: int, version: int = 0) -> dict[str, Any]:
    return {"id": i, "name": f"user-{i}", "rev": version, "address": {"city": "Lyon",
            "zip": f"{69000 + i % 100}"}, "tags": ["a", "b"], "note": "x" * 80}


@pytest.fixture(scope="module")
def scale_app(redis_server: RedisServer) -> Iterator[Flask]:
    app = create_app({"TESTING": True, "REDIS_URL": redis_server.url, "KEY_PREFIX": PREFIX})
    yield app
    connection = app.extensions["redis"]
    for key in connection.scan_iter(f"{PREFIX}:*", count=1000):
        connection.delete(key)


def publish(seed: Seeder, records: list[dict[str, Any]]) -> tuple[int, float]:
    """Send a batch of `records`; return its version and the time its last message took."""
    batch = seed.batch("big")
    for start in range(0, len(records), PAGE):
        batch.page(records[start:start + PAGE])
    began = time.perf_counter()
    batch.complete()  # the ingest consumer records the totals and settles the batch
    elapsed = time.perf_counter() - began
    assert seed.status("big", batch.version) == "complete"
    return batch.version, elapsed


@pytest.fixture(scope="module")
def versions(scale_app: Flask) -> tuple[int, int]:
    store: Store = scale_app.extensions["store"]
    store.definitions.put("big", StreamDefinition.model_validate(
        {"source": {"url": "http://127.0.0.1:1/x"}, "key": "id"}))
    seed = Seeder(scale_app)
    first, cost_first = publish(seed, [record(i) for i in range(N)])
    # 1% updated, 1% removed, 1% added.
    changed = [record(i, 1 if i % 100 == 0 else 0) for i in range(N) if i % 100 != 1]
    second, cost_second = publish(seed, changed + [record(N + i) for i in range(N // 100)])
    print(f"\ncomplete and settle with change set, {N} records: first {cost_first:.2f}s, "
          f"second {cost_second:.2f}s")
    return first, second


def test_change_set_of_100k_records(scale_app: Flask, versions: tuple[int, int]) -> None:
    first, second = versions
    client = scale_app.test_client()
    counts = client.get(f"/streams/big/batches/{second}").json["batch"]["changes"]
    assert (counts["added"], counts["updated"], counts["removed"]) == (1000, 1000, 1000)
    seen = {"added": 0, "updated": 0, "removed": 0}
    params: dict[str, Any] = {"since": first, "limit": 1000}
    for _ in range(100):
        body = client.get("/streams/big/changes", query_string=params).json
        for field in seen:
            seen[field] += len(body[field])
        if not body["next_cursor"]:
            break
        params = {"cursor": body["next_cursor"], "limit": 1000}
    assert seen == {"added": 1000, "updated": 1000, "removed": 1000}


@pytest.mark.parametrize(("kind", "coding"), [("ndjson", "identity"), ("csv", "identity"),
                                             ("ndjson", "gzip")])
def test_export_of_100k_records_has_flat_memory(scale_app: Flask, versions: tuple[int, int],
                                                kind: str, coding: str) -> None:
    client = scale_app.test_client()
    tracemalloc.start()
    began = time.perf_counter()
    response = client.get(f"/streams/big/data?format={kind}", buffered=False,
                          headers={"Accept-Encoding": coding})
    unpack = zlib.decompressobj(wbits=31) if coding == "gzip" else None
    total = lines = sent = 0
    for packed in response.response:
        chunk = unpack.decompress(packed) if unpack else packed
        sent += len(packed)
        total += len(chunk)
        lines += chunk.count(b"\n")
    response.close()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    elapsed = time.perf_counter() - began
    print(f"\n{kind} export ({coding}): {lines} lines, {total / 1e6:.1f} MB "
          f"({sent / 1e6:.1f} MB sent) in {elapsed:.2f}s, peak traced memory {peak / 1e6:.2f} MB")
    assert response.headers["X-Stream-Version"] == str(versions[1])
    assert response.headers.get("Content-Encoding", "identity") == coding
    assert lines == N + (1 if kind == "csv" else 0)
    assert peak < min(8e6, total / 2), "the export held the version in memory"
