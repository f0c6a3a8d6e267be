"""HTTP as loaders use it: what compression costs and saves, what a 304 saves, and the
stream list at 1,000 streams. Each figure has its baseline measured in the same run:
the plain (identity) answer for compression and 304s, the whole list in one answer for
the pages. Sequential requests from one client on loopback; every loop is bounded."""

from __future__ import annotations

import statistics
import time
from typing import Any

import requests

from app.store import build_store
from bench.env import World
from config.settings import load_settings
from config.streams import StreamDefinition
from devtools.system import System

CODINGS = ("identity", "gzip", "zstd", "br")
STREAMS = 1000
RUNNING_EVERY = 4  # every 4th stream is running
WEEK = 7 * 24 * 3600


def _get(http: requests.Session, url: str, **headers: str) -> tuple[float, int, Any]:
    """GET `url`, reading the body as sent; return (seconds, bytes on the wire, response)."""
    began = time.perf_counter()
    with http.get(url, headers=headers, stream=True, timeout=120) as response:
        size = len(response.raw.read(decode_content=False))
    return time.perf_counter() - began, size, response


def compression(world: World, stream: str, rounds: int = 3, pages: int = 50
                ) -> list[dict[str, Any]]:
    """Per coding: bytes and time of a whole NDJSON export and of a page of 1,000 records."""
    system = world.system
    assert system is not None
    export_url = system.api(f"/streams/{stream}/data?format=ndjson")
    page_url = system.api(f"/streams/{stream}/data?limit=1000")
    rows: list[dict[str, Any]] = []
    with requests.Session() as http:
        for coding in CODINGS:
            exports = [_get(http, export_url, **{"Accept-Encoding": coding})
                       for _ in range(rounds)]
            page_times = [_get(http, page_url, **{"Accept-Encoding": coding})
                          for _ in range(pages)]
            rows.append({"coding": coding,
                         "export_bytes": exports[0][1],
                         "export_s": statistics.median(t for t, _, _ in exports),
                         "page_bytes": page_times[0][1],
                         "page_ms": statistics.median(t for t, _, _ in page_times) * 1000})
        _, _, last = _get(http, export_url)
        etag = last.headers["ETag"]
        unchanged = [_get(http, export_url, **{"If-None-Match": etag}) for _ in range(pages)]
    assert all(response.status_code == 304 for _, _, response in unchanged)
    plain = rows[0]
    for row in rows:
        row["size_ratio"] = row["export_bytes"] / plain["export_bytes"]
        row["time_ratio"] = row["export_s"] / plain["export_s"]
        row["page_ratio"] = row["page_ms"] / plain["page_ms"]
    rows.append({"coding": "304 (If-None-Match)", "export_bytes": unchanged[0][1],
                 "export_s": statistics.median(t for t, _, _ in unchanged),
                 "size_ratio": 0.0, "time_ratio": statistics.median(
                     t for t, _, _ in unchanged) / plain["export_s"]})
    return rows


def define_many(world: World, system: System) -> list[str]:
    """Define STREAMS streams through the store and start every RUNNING_EVERY-th."""
    settings = load_settings({"REDIS_URL": world.redis_server.url})
    store = build_store(world.redis, settings)
    definition = StreamDefinition.model_validate({"source": {"url": world.upstream.url(10)},
                                                  "interval_seconds": WEEK})
    names = [f"list-{i:04d}" for i in range(STREAMS)]
    for name in names:
        store.definitions.put(name, definition)
    for name in names[::RUNNING_EVERY]:
        system.http.post(system.api(f"/streams/{name}/start"), json={"run_now": False},
                         timeout=10).raise_for_status()
    return names


def _latencies(http: requests.Session, url: str, count: int) -> dict[str, float]:
    times = []
    for _ in range(count):
        began = time.perf_counter()
        http.get(url, timeout=30).raise_for_status()
        times.append((time.perf_counter() - began) * 1000)
    cuts = statistics.quantiles(times, n=20)
    return {"p50_ms": statistics.median(times), "p95_ms": cuts[18]}


def listing(world: World, count: int = 100) -> list[dict[str, Any]]:
    """p50 and p95 of list pages at STREAMS streams, against the whole list in one answer."""
    system = world.system
    assert system is not None
    define_many(world, system)
    with requests.Session() as http:
        middle = http.get(system.api("/streams?limit=500"), timeout=30).json()["next_cursor"]
        cases = [("whole list, one answer (limit=1000)", "/streams?limit=1000"),
                 ("first page (limit=100)", "/streams?limit=100"),
                 ("page after 500 (limit=100)", f"/streams?limit=100&cursor={middle}"),
                 ("running only (limit=100)", "/streams?limit=100&state=running"),
                 ("status page overview (limit=50)", "/ui/overview?limit=50")]
        rows: list[dict[str, Any]] = [
            {"case": label, **_latencies(http, system.api(path), count)}
            for label, path in cases]
    for row in rows:
        row["ratio"] = row["p95_ms"] / rows[0]["p95_ms"]
    return rows
