"""Ingest throughput against the floor, and its scaling with workers and consumers.

The floor is the least work the job needs, in one process: fetch every page with
requests, parse it, write its records into one sorted set (one pipelined ZADD per page),
then set a pointer. Ours is the whole system: POST /start to the pointer moving.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson
import redis
import requests

from bench.env import PAGE_SIZE, World, wait_for
from devtools.system import System

TIMEOUT = 600.0


@dataclass
class Run:
    """One measured ingest: records and seconds from start to publication."""

    records: int
    seconds: float
    whole: float = 0.0  # seconds until every page was stored (before settling)

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0


def floor(connection: redis.Redis, url: str, name: str) -> Run:
    """Fetch, parse and store every page sequentially in one process; set a pointer."""
    started = time.perf_counter()
    records = 0
    with requests.Session() as http:
        next_url: str | None = url
        for number in range(1, 100_000):
            if next_url is None:
                break
            body = orjson.loads(http.get(next_url, timeout=60).content)
            base = number * 1_000_000
            members = {orjson.dumps(record, option=orjson.OPT_SORT_KEYS): base + index
                       for index, record in enumerate(body["data"])}
            with connection.pipeline(transaction=False) as pipe:
                pipe.zadd(f"floor:{{{name}}}:rec", members)
                pipe.execute()
            records += len(members)
            next_url = body["next"]
    connection.set(f"floor:{{{name}}}:current", 1)
    return Run(records, time.perf_counter() - started)


def define(system: System, name: str, url: str, extra: dict[str, Any] | None = None
           ) -> None:
    """Define a stream on the demo upstream, fetched once an hour (so once here); `extra`
    adds or replaces fields of the definition."""
    body: dict[str, Any] = {"source": {"url": url, "records_path": "data",
                       "pagination": {"type": "next_url", "next_url_path": "next"},
                       "max_pages": 100_000, "read_timeout": 60},
            "key": "id", "interval_seconds": 3600,
            "publish_gate": {"allow_empty": True}, **(extra or {})}
    response = system.http.put(system.api(f"/streams/{name}"), json=body, timeout=10)
    response.raise_for_status()


def start(system: System, name: str) -> None:
    system.http.post(system.api(f"/streams/{name}/start"), json={}, timeout=10
                     ).raise_for_status()


def ours(world: World, system: System, names: list[str], url: str,
         extra: dict[str, Any] | None = None, timeout: float = TIMEOUT) -> Run:
    """Start every stream at once; time until each has published; stop them."""
    for name in names:
        define(system, name, url, extra)
    pointers = [f"ds:{{{name}}}:current" for name in names]
    before = world.redis.mget(pointers)
    started = time.perf_counter()
    for name in names:
        start(system, name)

    whole_at: list[float] = []

    def published() -> bool:
        if not whole_at and all(_whole(world.redis, name) for name in names):
            whole_at.append(time.perf_counter() - started)
        now = world.redis.mget(pointers)
        return all(new and new != old for new, old in zip(now, before, strict=True))

    wait_for(published, timeout, 0.005, "publication")
    seconds = time.perf_counter() - started
    records = 0
    for name in names:
        version = int(world.redis.get(f"ds:{{{name}}}:current") or 0)
        records += int(world.redis.hget(f"ds:{{{name}}}:b:{version}", "records") or 0)
        system.http.post(system.api(f"/streams/{name}/stop"), json={}, timeout=10)
    return Run(records, seconds, whole_at[0] if whole_at else seconds)


def _whole(connection: redis.Redis, name: str) -> bool:
    """Tell whether the newest batch of `name` has every page and record it announced."""
    version = str(connection.get(f"ds:{{{name}}}:seq") or "")
    expected, received = connection.hmget(f"ds:{{{name}}}:b:{version}", "expected_records",
                                          "records_received") if version else (None, None)
    return expected is not None and expected == received


def compare(world: World, system: System, total: int) -> dict[str, float]:
    """Measure the floor and ours at `total` records; return both rates and the ratio."""
    url = world.upstream.url(total)
    requests.get(url, timeout=60)  # warm the upstream's code paths
    low = floor(world.redis, url, f"f{total}")
    world.forget("floor:*")
    run = ours(world, system, [f"ingest-{total}"], url)
    assert run.records == low.records, (run.records, low.records)
    return {"records": total, "floor_rps": low.rate, "ours_rps": run.rate,
            "floor_s": low.seconds, "ours_s": run.seconds, "ratio": run.rate / low.rate,
            "whole_s": run.whole, "whole_ratio": low.seconds / run.whole}


def scaling(world: World, streams: int, per_stream: int, delay_ms: int,
            concurrency: tuple[int, ...] = (1, 2, 4)) -> list[dict[str, float]]:
    """Ingest `streams` streams at once with 1, 2, 4 fetch workers and ingest consumers."""
    rows = []
    url = world.upstream.url(per_stream, delay_ms)
    pages = -(-per_stream // PAGE_SIZE)
    for count in concurrency:
        system = world.start_system(FETCH_CONCURRENCY=str(count),
                                    INGEST_CONCURRENCY=str(count))
        names = [f"scale-{count}-{i}" for i in range(streams)]
        run = ours(world, system, names, url)
        ideal = streams * per_stream / (streams * pages * delay_ms / 1000)
        rows.append({"concurrency": count, "records": run.records, "seconds": run.seconds,
                     "rps": run.rate, "latency_bound_rps": ideal})
        world.forget("ds:{scale-*")
    return rows
