"""Delivery into warehouses, per destination type (DuckDB, PostgreSQL), 100k records.

- Full delivery against its baseline: dlt loading the same upstream itself (a resource
  paging the demo upstream with requests, as a dlt user writes it), into the same
  destination with the same file format and replace strategy, from the upstream as it
  is on loopback (no latency) and with 20 ms per page (as the scaling benchmark). Ours
  delivers a published version from the store: `ds.deliver.stream`, run in this process
  (the deliver worker's code, without the queue's latency).
- A version with 1% of its records changed (a merge of its change set) against a full
  reload of the same version (`POST .../reload`: a replace).

Each is timed REPEAT times, alternated, and the best run counts (the machine is shared).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import dlt
import requests

from app import create_app
from app.extensions import get_store
from bench.env import WORK_DIR, World
from config import names
from config.destinations import DestinationDefinition
from config.streams import StreamDefinition
from demo import item
from devtools.postgres_server import PostgresServer
from tasks.warehouse.loader import FILE_FORMATS, Warehouse
from tests.support.seed import Seeder

SECRET = "DS_SECRET_BENCH_PG_URL"
REPEAT = 3
CHANGED = 0.01
CHUNK = 1000
# Upstream latency of the second baseline, in ms per page.
DELAY_MS = 20


def pages(url: str, counted: list[int] | None = None) -> Iterator[list[dict[str, Any]]]:
    """Yield the upstream's pages (the baseline's dlt resource), counting the records."""
    with requests.Session() as http:
        next_url: str | None = url
        while next_url:
            body = http.get(next_url, timeout=60).json()
            if counted is not None:
                counted.append(len(body["data"]))
            yield body["data"]
            next_url = body["next"]


def direct(kind: str, definition: DestinationDefinition, url: str) -> tuple[float, int]:
    """Load the upstream straight into the destination with dlt; return (seconds, rows)."""
    warehouse = Warehouse(f"direct_{kind}", definition, duckdb_dir=str(WORK_DIR / "duckdb"),
                          work_dir=str(WORK_DIR / "dlt"))
    pipeline = dlt.pipeline(pipeline_name=f"bench_direct_{kind}",
                            pipelines_dir=str(WORK_DIR / "dlt"),
                            destination=warehouse.destination, dataset_name="bench_direct")
    counted: list[int] = []
    started = time.perf_counter()
    info = pipeline.run(dlt.resource(pages(url, counted), name="items", primary_key="id",
                                     write_disposition="replace"),
                        loader_file_format=FILE_FORMATS.get(definition.type))  # type: ignore[arg-type]
    seconds = time.perf_counter() - started
    assert info.loads_ids, "nothing loaded"
    return seconds, sum(counted)


def stage(seed: Seeder, stream: str, records: list[dict[str, Any]]) -> int:
    """Publish `records` as the stream's next version, page by page as the worker sends."""
    batch = seed.batch(stream)
    for start in range(0, len(records), CHUNK):
        batch.page(records[start:start + CHUNK])
    batch.complete()
    assert seed.store.reader.current_version(stream) == batch.version
    return batch.version


def timed(deliver: Any, stream: str, destination: str) -> float:
    started = time.perf_counter()
    outcome = deliver(stream, destination)
    assert outcome == "delivered", outcome
    return time.perf_counter() - started


def compare(world: World, total: int) -> list[dict[str, float | str]]:
    """Measure both comparisons for DuckDB and PostgreSQL; return one row per type."""
    postgres = PostgresServer().start()
    os.environ[SECRET] = postgres.url
    app = create_app({"REDIS_URL": world.redis_server.url,
                      "DUCKDB_DIR": str(WORK_DIR / "duckdb"),
                      "DELIVERY_WORK_DIR": str(WORK_DIR / "dlt")})
    url = world.upstream.url(total)
    records = [record for page in pages(url) for record in page]  # what the upstream serves
    urls = (url, world.upstream.url(total, DELAY_MS))
    kinds = {"duckdb": DestinationDefinition(type="duckdb", path="bench.duckdb"),
             "postgres": DestinationDefinition(type="postgres", credentials_env=SECRET)}
    rows = []
    try:
        with app.app_context():
            import tasks.deliver  # noqa: F401 (registers the delivery task)

            deliver = app.extensions["celery"].tasks[names.DELIVER_STREAM]
            for kind, definition in kinds.items():
                rows.append(_one(world, app, deliver, kind, definition, records, urls))
    finally:
        postgres.close()
    return rows


def _one(world: World, app: Any, deliver: Any, kind: str, definition: DestinationDefinition,
         records: list[dict[str, Any]], urls: tuple[str, str]) -> dict[str, float | str]:
    store = get_store()
    stream = f"deliver-{kind}"
    store.destinations.put(kind, definition)
    store.definitions.put(stream, StreamDefinition.model_validate(
        {"source": {"url": "http://127.0.0.1:9/never"}, "key": "id", "deliver_to": [kind]}))
    seed = Seeder(app)
    stage(seed, stream, records)
    fulls, directs, slows, merges, reloads = [], [], [], [], []
    loaded = 0
    for round_ in range(REPEAT):
        if round_:
            store.delivery_states.ask_reload(stream, kind)
        fulls.append(timed(deliver, stream, kind))
        seconds, loaded = direct(kind, definition, urls[0])
        directs.append(seconds)
        slows.append(direct(kind, definition, urls[1])[0])
    current = list(records)
    for round_ in range(REPEAT + 1):  # each version changes another 1% of the records
        for index in range(round_, len(current), int(1 / CHANGED)):
            current[index] = item(current[index]["id"], 1000 + round_, 60)
        stage(seed, stream, current)
        merges.append(timed(deliver, stream, kind))
        if round_ < REPEAT:
            store.delivery_states.ask_reload(stream, kind)
            reloads.append(timed(deliver, stream, kind))
    world.forget(f"ds:{{{stream}}}*")
    full, base, slow = min(fulls), min(directs), min(slows)
    merge, reload = min(merges), min(reloads)
    return {"destination": kind, "records": len(records), "direct_records": loaded,
            "direct_s": base, "ours_s": full, "full_speedup": base / full,
            "direct_slow_s": slow, "slow_speedup": slow / full,
            "merge_s": merge, "reload_s": reload, "merge_speedup": reload / merge}
