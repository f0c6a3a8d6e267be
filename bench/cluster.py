"""Eight streams of 100k records at once, with the store on one Redis and on a Redis
Cluster of three masters (a replica each): throughput, each master's share of the
commands, and where the CPU time went.

The same Procfile processes run both (the broker stays on the one Redis). Commands are
counted from INFO commandstats of each master, Redis CPU from INFO cpu (main thread and
background threads), the processes' CPU from /proc (each Procfile process is a process
group), all as differences over the run. From the busiest master's CPU time the report
derives what one core per master would allow on the Redis side.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import redis

from bench.env import WORK_DIR, World, wait_for
from bench.ingest import TIMEOUT, define, start
from devtools.procs import Proc
from devtools.redis_cluster import Cluster, client
from devtools.redis_server import RedisServer
from devtools.system import System

STREAMS, RECORDS, ROUNDS = 8, 100_000, 2
TICK = os.sysconf("SC_CLK_TCK")


def compare(world: World, streams: int = STREAMS, records: int = RECORDS,
            rounds: int = ROUNDS) -> dict[str, Any]:
    """Run `streams` x `records` on the one Redis and on the cluster, `rounds` times in
    turn (the machine is shared: read each round's ratio); return every run."""
    url = world.upstream.url(records)
    cluster = Cluster(WORK_DIR / "cluster").start()
    runs: dict[str, list[dict[str, Any]]] = {"one": [], "cluster": []}
    try:
        masters = [n for n in cluster.nodes
                   if client(n.port).info("replication")["role"] == "master"]
        replicas = [n for n in cluster.nodes if n not in masters]
        for _ in range(rounds):
            runs["one"].append(run(world, world.start_system(), [world.redis_server], [],
                                   streams, url))
            world.forget("ds:{c8-*")
            system = world.start_system(STORE_URL=cluster.url)
            runs["cluster"].append(run(world, system, masters, [*replicas, world.redis_server],
                                       streams, url))
            for node in masters:
                for key in client(node.port).scan_iter("ds:{c8-*", count=10_000):
                    client(node.port).unlink(key)
    finally:
        world.stop_system()
        cluster.stop()
    world.start_system()  # the other parts run on the one Redis
    return {"streams": streams, "records_per_stream": records, **runs}


def run(world: World, system: System, masters: list[RedisServer], others: list[RedisServer],
        streams: int, url: str) -> dict[str, Any]:
    """Start every stream at once; time until all published; count what each part did.

    `masters` hold the store (their commands are counted); `others` are the replicas and
    the broker when they are other servers (their CPU is counted). The streams have the
    same names in every run, so they land on the same masters each time.
    """
    names = [f"c8-{i}" for i in range(streams)]
    for name in names:
        define(system, name, url)
    home = {name: _home(system.store, name, masters) for name in names}
    procs = {**system.procs, "upstream": world.upstream.proc}
    servers = [*masters, *others]
    before_redis, before_procs = _redis_stats(servers), _proc_cpu(procs)
    started = time.perf_counter()
    for name in names:
        start(system, name)
    wait_for(lambda: all(system.store.get(f"ds:{{{name}}}:current") for name in names),
             TIMEOUT, 0.01, "every stream published")
    seconds = time.perf_counter() - started
    after_redis, after_procs = _redis_stats(servers), _proc_cpu(procs)
    total = sum(int(system.store.hget(f"ds:{{{name}}}:b:1", "records") or 0) for name in names)
    for name in names:
        system.http.post(system.api(f"/streams/{name}/stop"), json={}, timeout=10)
        system.http.delete(system.api(f"/streams/{name}"), timeout=10)
    delta = {port: (after_redis[port][0] - before_redis[port][0],
                    after_redis[port][1] - before_redis[port][1]) for port in after_redis}
    commands = sum(delta[m.port][0] for m in masters)
    return {"records": total, "seconds": seconds, "rps": total / seconds,
            "streams_per_master": {str(m.port): list(home.values()).count(m.port)
                                   for m in masters},
            "command_share": {str(m.port): delta[m.port][0] / commands for m in masters},
            "master_cpu_s": {str(m.port): delta[m.port][1] for m in masters},
            "other_redis_cpu_s": sum(delta[o.port][1] for o in others),
            "process_cpu_s": {n: after_procs[n] - before_procs.get(n, 0.0) for n in after_procs}}


def _home(store: redis.Redis, name: str, masters: list[RedisServer]) -> int:
    """Return the port of the master that holds `name`'s keys."""
    if len(masters) == 1:
        return masters[0].port
    node = store.get_node_from_key(f"ds:{{{name}}}:current")  # type: ignore[attr-defined]
    return int(node.port)


def _redis_stats(servers: list[RedisServer]) -> dict[int, tuple[int, float]]:
    """Return, per server, (commands served, CPU seconds used) so far."""
    stats = {}
    for master in servers:
        node = client(master.port)
        calls = sum(int(entry["calls"]) for entry in node.info("commandstats").values())
        cpu = node.info("cpu")
        stats[master.port] = (calls, float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"]))
    return stats


def _proc_cpu(procs: dict[str, Proc]) -> dict[str, float]:
    """Return the CPU seconds each process group has used so far."""
    found: dict[str, float] = {}
    for name, proc in procs.items():
        if proc.process is None:
            continue
        group = proc.process.pid
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == group:  # field 5 of stat: the process group
                found[name] = found.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / TICK
    return found
