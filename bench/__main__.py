"""Run every benchmark, print the table and write docs/benchmarks.md.

    python -m bench            N = 10k, 100k, 1M (about 10 minutes)
    python -m bench --quick    N = 10k, 100k only
    python -m bench --only ingest,publish,incremental,reads,memory,scaling,compression,\
                           listing,cluster,delivery
    python -m bench --only scale --no-write
                               one stream of 100k, 2M and 5M records (about 40 minutes;
                               not in the full run; BENCH_SCALE_SIZES=100000,2000000 to
                               choose the sizes)
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from bench import (
    cluster,
    delivery,
    http,
    incremental,
    ingest,
    memory,
    publish,
    reads,
    report,
    scale,
)
from bench.env import World, machine

FULL = (10_000, 100_000, 1_000_000)
QUICK = (10_000, 100_000)
PARTS = ("ingest", "publish", "incremental", "reads", "memory", "scaling", "compression",
         "listing", "cluster", "delivery", "scale")
# Run only when named: the 5M-record stream alone takes about 25 minutes.
OPT_IN = ("scale",)
# Records of the delivery benchmark (the size), in every mode.
DELIVERY_RECORDS = 100_000


def run(parts: tuple[str, ...], sizes: tuple[int, ...], quick: bool) -> dict[str, Any]:
    """Start the world, run the chosen parts, stop everything; return the results."""
    world = World()
    results: dict[str, Any] = {"machine": machine(world.redis), "quick": quick}
    try:
        system = world.start_system()
        if "ingest" in parts:
            results["ingest"] = [_step(f"ingest {n}", ingest.compare, world, system, n)
                                 for n in sizes]
        reference = f"ingest-{sizes[1] if len(sizes) > 1 else sizes[0]}"
        if {"memory", "reads", "compression"} & set(parts):
            total = int(reference.split("-")[1])
            # A second batch: the steady state (its change set holds changes only).
            ingest.ours(world, system, [reference], world.upstream.url(total))
        if "memory" in parts:
            results["memory"] = _step("memory", memory.measure, world.redis, reference)
        if "reads" in parts:
            results["reads"] = _step("reads", reads.compare, world, reference,
                                     5 if quick else 10)
        if "publish" in parts:
            results["publish"] = [_step(f"publish {n}", publish.measure,
                                        world.redis_server.url, n)
                                  for n in (1_000, *sizes[1:])]
            world.forget("ds:{publish-*")
        if "incremental" in parts:
            results["incremental"] = [_step(f"incremental {n}", incremental.measure,
                                            world.redis_server.url, n) for n in sizes[1:]]
            world.forget("ds:{incremental-*")
        if "delivery" in parts:
            results["delivery"] = _step("delivery", delivery.compare, world, DELIVERY_RECORDS)
        if "scaling" in parts:
            per_stream = 10_000 if quick else 25_000
            results["scaling"] = _step("scaling", ingest.scaling, world, 4, per_stream, 20)
            results["scaling_setup"] = {"streams": 4, "per_stream": per_stream,
                                        "delay_ms": 20}
        if "cluster" in parts:
            results["cluster"] = _step("cluster", cluster.compare, world, cluster.STREAMS,
                                       cluster.RECORDS, 1 if quick else 2)
        if "compression" in parts:
            results["compression"] = _step("compression", http.compression, world, reference)
            results["compression_records"] = int(reference.split("-")[1])
        if "scale" in parts:  # fresh processes per size; the parts after get their own
            results["scale"] = _step("scale", scale.measure, world, scale.sizes_from_env())
            system = world.start_system()
        if "listing" in parts:  # last: it leaves 1,000 streams defined
            results["listing"] = _step("listing", http.listing, world)
    finally:
        world.close()
    return results


def _step(label: str, func: Any, *args: Any) -> Any:
    began = time.monotonic()
    print(f"... {label}", file=sys.stderr, flush=True)
    result = func(*args)
    print(f"    {label}: {time.monotonic() - began:.1f}s {result}", file=sys.stderr,
          flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="N = 10k and 100k only")
    parser.add_argument("--only", default=",".join(p for p in PARTS if p not in OPT_IN),
                        help="comma list of parts")
    parser.add_argument("--no-write", action="store_true",
                        help="print the table without writing docs/benchmarks.md")
    options = parser.parse_args()
    parts = tuple(part for part in options.only.split(",") if part in PARTS)
    started = time.monotonic()
    results = run(parts, QUICK if options.quick else FULL, options.quick)
    results["seconds"] = time.monotonic() - started
    table = report.tables(results)
    print(table)
    if not options.no_write:
        report.write(results, table)


if __name__ == "__main__":
    main()
