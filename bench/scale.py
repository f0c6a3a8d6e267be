"""Scale: one stream of 100k, 2M and 5M records through the whole system, and the peak
memory of the fetch worker and the ingest consumer at each size.

Each size gets freshly started processes, so each process's high-water mark (VmHWM in
/proc/<pid>/status) is that batch's alone. A Celery worker is a process group: the main
process and its prefork pool children, where the tasks run; the figure that matters is
the busiest pool child's peak, and the group's sampled total is shown beside it. The
stream keeps the last record per key with `dedupe` (the one middleware that holds records
back to the end of the batch) and raises its batch budget to fit the size;
BENCH_SCALE_MIDDLEWARE=none runs it without middleware, =dedupe-first keeping the first.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from bench import ingest
from bench.env import World, wait_for
from devtools.system import System

SIZES = (100_000, 2_000_000, 5_000_000)
# The stream's middleware, by BENCH_SCALE_MIDDLEWARE (default: dedupe keeping the last).
MIDDLEWARE: dict[str, list[dict[str, Any]]] = {
    "dedupe-last": [{"type": "dedupe", "keep": "last"}],
    "dedupe-first": [{"type": "dedupe", "keep": "first"}], "none": []}
# Room per record in the batch budget's bytes (the demo's records are about 110 bytes).
BYTES_PER_RECORD = 1024
SAMPLE_SECONDS = 1.0


def deadline(records: int) -> float:
    """Seconds a batch of `records` may take before the run fails (at least 1,000 rec/s)."""
    return 120.0 + records / 1000


def _kib(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def group(leader: int) -> list[int]:
    """Return the pids of the process group `leader` leads (leader first)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        fields = stat.rpartition(")")[2].split()
        if int(fields[2]) == leader:  # pgrp, after state and ppid
            members.append(int(entry.name))
    return sorted(members, key=lambda pid: pid != leader)


class Watch:
    """Samples the resident memory of the worker's and consumer's process groups."""

    def __init__(self, system: System, names: tuple[str, ...] = ("worker", "ingest")) -> None:
        self.leaders = {}
        for name in names:
            process = system.procs[name].process
            assert process is not None
            self.leaders[name] = process.pid
        self.peak_total = dict.fromkeys(names, 0)
        self.last = 0.0

    def sample(self) -> None:
        if time.monotonic() - self.last < SAMPLE_SECONDS:
            return
        self.last = time.monotonic()
        for name, leader in self.leaders.items():
            total = sum(_kib(pid, "VmRSS") for pid in group(leader))
            self.peak_total[name] = max(self.peak_total[name], total)

    def peaks(self) -> dict[str, dict[str, float]]:
        """Return MiB: main process and busiest pool child VmHWM, and the group's peak."""
        found = {}
        for name, leader in self.leaders.items():
            pids = group(leader)
            children = [_kib(pid, "VmHWM") for pid in pids if pid != leader]
            found[name] = {"main_mib": _kib(leader, "VmHWM") / 1024,
                           "child_mib": max(children, default=0) / 1024,
                           "group_mib": self.peak_total[name] / 1024}
        return found


def run_one(world: World, records: int, middleware: str) -> dict[str, Any]:
    """Ingest one stream of `records` on fresh processes; return times and peaks (and
    the error, if the batch failed)."""
    limit = deadline(records)
    system = world.start_system(FETCH_SOFT_TIME_LIMIT=str(int(limit)),
                                FETCH_HARD_TIME_LIMIT=str(int(limit) + 60),
                                VISIBILITY_TIMEOUT=str(max(3600, int(limit) + 600)))
    name = f"scale-{records}"
    extra = {"middleware": MIDDLEWARE[middleware],
             "batch_limits": {"max_records": max(records, 1_000_000),
                              "max_bytes": records * BYTES_PER_RECORD}}
    watch = Watch(system)
    started = time.perf_counter()
    ingest.define(system, name, world.upstream.url(records), extra)
    ingest.start(system, name)
    error = ""
    try:
        wait_for(lambda: _settled(world, name, watch), limit, 0.05, f"{name} published")
    except BatchEnded as exc:
        error = str(exc)
    seconds = time.perf_counter() - started
    version = int(world.redis.get(f"ds:{{{name}}}:current") or 0)
    stored = int(world.redis.hget(f"ds:{{{name}}}:b:{version}", "records") or 0)
    # Up to 100k the demo retires 2% of its items and adds a few: count what was stored.
    assert error or stored >= records * 0.97, (stored, records)
    result = {"records": records, "middleware": middleware, "error": error,
              "stored": stored, "seconds": seconds, "rps": stored / seconds,
              "redis_mib": int(world.redis.info("memory")["used_memory"]) / 2**20,
              **{f"{proc}_{key}": value for proc, peaks in watch.peaks().items()
                 for key, value in peaks.items()}}
    system.http.post(system.api(f"/streams/{name}/stop"), json={}, timeout=10)
    world.stop_system()
    world.forget(f"ds:{{{name}}}*")
    return result


class BatchEnded(Exception):
    """The measured batch ended without publishing."""


def _settled(world: World, name: str, watch: Watch) -> bool:
    """Tell whether the stream published; fail at once if its batch ended otherwise."""
    watch.sample()
    version = str(world.redis.get(f"ds:{{{name}}}:seq") or "")
    if not version:
        return False
    status = str(world.redis.hget(f"ds:{{{name}}}:b:{version}", "status"))
    if status in ("failed", "quarantined", "abandoned"):
        error = str(world.redis.hget(f"ds:{{{name}}}:b:{version}", "error"))
        raise BatchEnded(f"{name} batch {version} {status}: {error}")
    return world.redis.get(f"ds:{{{name}}}:current") == version


def measure(world: World, sizes: tuple[int, ...] = SIZES) -> list[dict[str, Any]]:
    """Run every size in turn (smallest first); return one row each."""
    middleware = os.environ.get("BENCH_SCALE_MIDDLEWARE", "dedupe-last")
    rows = []
    for records in sizes:
        rows.append(run_one(world, records, middleware))
        print(f"    scale {records}: {rows[-1]}", flush=True)
    return rows


def sizes_from_env() -> tuple[int, ...]:
    """Return the sizes of BENCH_SCALE_SIZES (comma list of record counts), or SIZES."""
    raw = os.environ.get("BENCH_SCALE_SIZES", "")
    return tuple(int(part) for part in raw.split(",") if part.strip()) or SIZES
