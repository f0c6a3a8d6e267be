"""Making a write count only once a replica holds it: Redis WAIT after the writes that a
failover must never undo, on a store with replicas (a cluster or a Sentinel group).

Replication is asynchronous: a master that dies loses what it had not yet sent. Two
writes must survive that: a batch version handed out (else a failover could hand the
same number to another batch, and a cursor on the old one would read the new) and a
publish (else the ingest message that published is acknowledged but the batch is not
published). After each, the writer waits up to ``REPLICA_WAIT_MS`` for one replica to
acknowledge; with no replica answering it logs a warning and goes on (availability
first: the write stands on the master). WAIT counts the writes of the connection it
runs on; the pool hands a single-threaded process (a Celery pool child) back the
connection that wrote last, and WAIT goes to the master of the key's slot.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from redis import Redis
from redis.cluster import RedisCluster
from redis.sentinel import SentinelConnectionPool

from app.store.connection import UNAVAILABLE

log = logging.getLogger(__name__)


def has_replicas(connection: Redis) -> bool:
    """True when `connection` is a cluster's or a Sentinel group's (replicas by design)."""
    return isinstance(connection, RedisCluster) or isinstance(
        connection.connection_pool, SentinelConnectionPool)


@dataclass(frozen=True)
class Replicas:
    """Waits for one replica of the master that holds a key; a no-op without replicas."""

    connection: Redis | None = None
    timeout_ms: int = 500

    def wait(self, key: str) -> int:
        """Wait until one replica holds this connection's writes; return how many do."""
        if self.connection is None:
            return 0
        options: dict[str, Any] = {}
        if isinstance(self.connection, RedisCluster):
            options["target_nodes"] = self.connection.get_node_from_key(key)
        try:
            acked = int(self.connection.execute_command("WAIT", 1, self.timeout_ms, **options))
        except UNAVAILABLE as exc:  # the master went away after the write
            log.warning("no replica acknowledged a write of %s: %s", key, type(exc).__name__)
            return 0
        if acked < 1:
            log.warning("no replica acknowledged a write of %s within %s ms: a failover "
                        "now could lose it", key, self.timeout_ms)
        return acked


NO_REPLICAS = Replicas()
