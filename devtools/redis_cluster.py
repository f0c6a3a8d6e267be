"""A Redis Cluster and a Sentinel group of real redis-server processes on 127.0.0.1.

Used by the cluster tests, the failover tests and the benchmarks, with the same binary as
`RedisServer` (no redis-cli needed: the cluster is joined with CLUSTER MEET, ADDSLOTS and
REPLICATE). Both are built for failover: a short node timeout (cluster) and a short
down-after (Sentinel), so a killed master is replaced in seconds.
"""

from __future__ import annotations

import random
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

from devtools.redis_server import RedisServer, find_binary, free_port


def _until(probe: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `probe` until it is true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not _quietly(probe):
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def _quietly(probe: Callable[[], bool]) -> bool:
    try:
        return probe()
    except redis.RedisError:
        return False


def cluster_port() -> int:
    """Return a free port P whose cluster bus port P + 10000 is free too (Redis 6.2 has
    no `cluster-port`, so P must stay at or below 55535)."""
    for _ in range(200):
        port = random.randint(20_000, 45_000)
        if _free(port) and _free(port + 10_000):
            return port
    raise RuntimeError("no free port pair for a cluster node")


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def client(port: int) -> redis.Redis:
    """Return a plain client of the node on `port` (no cluster redirection)."""
    return redis.Redis(port=port, decode_responses=True, socket_connect_timeout=0.5,
                       socket_timeout=2)


class Cluster:
    """`masters` masters with `replicas` replicas each; slots split evenly."""

    def __init__(self, data_dir: Path, masters: int = 3, replicas: int = 1,
                 node_timeout_ms: int = 1000) -> None:
        options = ("--cluster-enabled", "yes", "--cluster-node-timeout", str(node_timeout_ms),
                   "--cluster-config-file", "nodes.conf")
        self.nodes = [RedisServer(data_dir / f"node-{i}", port=cluster_port(), args=options)
                      for i in range(masters * (1 + replicas))]
        self.masters = masters

    @property
    def url(self) -> str:
        """The STORE_URL of this cluster (every node as a start-up node)."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    def start(self, timeout: float = 30.0) -> Cluster:
        """Start and join every node; stop them all if the cluster does not come up."""
        try:
            return self._start(timeout)
        except BaseException:
            self.stop()
            raise

    def _start(self, timeout: float) -> Cluster:
        for node in self.nodes:
            node.start()
        first = client(self.nodes[0].port)
        for node in self.nodes[1:]:
            first.execute_command("CLUSTER MEET", "127.0.0.1", node.port)
        step = REDIS_CLUSTER_HASH_SLOTS // self.masters
        for index, node in enumerate(self.nodes[:self.masters]):
            high = REDIS_CLUSTER_HASH_SLOTS if index == self.masters - 1 else (index + 1) * step
            client(node.port).execute_command("CLUSTER ADDSLOTS", *range(index * step, high))
        _until(self._all_met, timeout, "every node to know every other")
        for index, node in enumerate(self.nodes[self.masters:]):
            master = self.nodes[index % self.masters]
            master_id = client(master.port).execute_command("CLUSTER MYID")
            client(node.port).execute_command("CLUSTER REPLICATE", master_id)
        self.wait_healthy(timeout)
        return self

    def _all_met(self) -> bool:
        return all(len(_nodes(node.port)) == len(self.nodes) for node in self.nodes)

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Wait until every live node says cluster_state:ok and every replica is in sync."""
        _until(self._healthy, timeout, "the cluster to be ok with replicas in sync")

    def _healthy(self) -> bool:
        for node in self.live():
            if client(node.port).execute_command("CLUSTER INFO")["cluster_state"] != "ok":
                return False
            replication = client(node.port).info("replication")
            if replication["role"] == "slave" and replication["master_link_status"] != "up":
                return False
        return True

    def live(self) -> list[RedisServer]:
        return [n for n in self.nodes if n.process is not None and n.process.poll() is None]

    def node(self, port: int) -> RedisServer:
        return next(n for n in self.nodes if n.port == port)

    def master_of(self, key: str) -> RedisServer | None:
        """Return the node that serves `key`'s slot now (None during a failover)."""
        slot = key_slot(key.encode())
        for node in self.live():
            for address, about in _nodes(node.port).items():
                if ("master" in about["flags"] and "fail" not in about["flags"]
                        and any(int(low) <= slot <= int(high) for low, high in about["slots"])):
                    return self.node(_port(address))
        return None

    def replicas_of(self, master: RedisServer) -> list[RedisServer]:
        master_id = client(master.port).execute_command("CLUSTER MYID")
        return [self.node(_port(address)) for address, about in _nodes(master.port).items()
                if about["master_id"] == master_id]

    def stop(self) -> None:
        for node in self.nodes:
            node.stop(kill=True)


def _nodes(port: int) -> dict[str, dict[str, Any]]:
    """Return CLUSTER NODES of the node on `port`: address -> flags, master_id, slots."""
    nodes: dict[str, dict[str, Any]] = client(port).execute_command("CLUSTER NODES")
    return nodes


def _port(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


class SentinelGroup:
    """One master, one replica and three sentinels watching them as `service`."""

    def __init__(self, data_dir: Path, service: str = "broker", down_after_ms: int = 1000
                 ) -> None:
        self.data_dir = data_dir
        self.service = service
        self.down_after_ms = down_after_ms
        self.master = RedisServer(data_dir / "master")
        self.replica = RedisServer(data_dir / "replica",
                                   args=("--replicaof", "127.0.0.1", str(self.master.port)))
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.sentinels: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        """The REDIS_URL (or STORE_URL) of this group."""
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/{self.service}/0"

    def start(self, timeout: float = 30.0) -> SentinelGroup:
        """Start the servers and sentinels; stop them all if the group does not form."""
        try:
            self.master.start()
            self.replica.start()
            for port in self.sentinel_ports:
                self.sentinels.append(self._sentinel(port))
            _until(self._watching, timeout, "the sentinels to find each other and the replica")
        except BaseException:
            self.stop()
            raise
        return self

    def _sentinel(self, port: int) -> subprocess.Popen[bytes]:
        folder = self.data_dir / f"sentinel-{port}"
        folder.mkdir(parents=True, exist_ok=True)
        conf = folder / "sentinel.conf"
        name = self.service
        conf.write_text(f"port {port}\nbind 127.0.0.1\ndir {folder.resolve()}\n"
                        f"logfile {(folder / 'sentinel.log').resolve()}\n"
                        f"sentinel monitor {name} 127.0.0.1 {self.master.port} 2\n"
                        f"sentinel down-after-milliseconds {name} {self.down_after_ms}\n"
                        f"sentinel failover-timeout {name} 10000\n"
                        f"sentinel parallel-syncs {name} 1\n")
        return subprocess.Popen([find_binary(), str(conf), "--sentinel"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def _watching(self) -> bool:
        for port in self.sentinel_ports:
            sentinel = client(port)
            if len(sentinel.execute_command("SENTINEL SENTINELS", self.service)) < 2:
                return False
            if len(sentinel.execute_command("SENTINEL REPLICAS", self.service)) < 1:
                return False
        return True

    def master_port(self) -> int:
        """Return the port of the master the sentinels name now."""
        for port in self.sentinel_ports:
            try:
                reply: Any = client(port).sentinel_get_master_addr_by_name(self.service)
                return int(reply[1])
            except (redis.RedisError, TypeError):
                continue
        raise LookupError("no sentinel answered")

    def server(self, port: int) -> RedisServer:
        return self.master if self.master.port == port else self.replica

    def stop(self) -> None:
        for process in self.sentinels:
            process.kill()
        for process in self.sentinels:
            process.wait(timeout=10)
        self.master.stop(kill=True)
        self.replica.stop(kill=True)
