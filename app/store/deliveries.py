"""Delivery counts of ingest messages, to bound a poison message's redeliveries.

One hash per batch (`StreamKeys.deliveries`): field ``"<message>:<page>"``, value the
number of times that message reached a consumer; it expires with the batch's staging data.
Ingest tasks are acknowledged late and rejected back to the queue when their pool child
dies, so a message that kills its child would loop forever; past `MAX_DELIVERIES` the
consumer ends the batch as failed (kind ``poison``) and acknowledges the message instead.
"""

from __future__ import annotations

from redis import Redis

from app.store.keys import StreamKeys
from app.store.locks import BatchLease

# Deliveries of one ingest message before its batch is failed as poisoned.
MAX_DELIVERIES = 5


class Deliveries:
    """Counts the deliveries of each ingest message of a batch."""

    def __init__(self, connection: Redis, prefix: str, ttl_ms: int) -> None:
        self.connection = connection
        self.prefix = prefix
        self.ttl_ms = ttl_ms

    def count(self, lease: BatchLease, message: str) -> int:
        """Record one more delivery of `message`; return how many there have been."""
        key = StreamKeys(self.prefix, lease.stream).deliveries(lease.version)
        with self.connection.pipeline(transaction=True) as pipe:
            pipe.hincrby(key, message, 1)
            pipe.pexpire(key, self.ttl_ms)
            delivered, _ = pipe.execute()
        return int(delivered)

    def poisoned(self, lease: BatchLease, message: str) -> bool:
        """Count this delivery; True once `message` has come more than MAX_DELIVERIES times."""
        return self.count(lease, message) > MAX_DELIVERIES
