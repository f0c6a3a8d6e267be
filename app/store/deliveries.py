"""Delivery counts of ingest messages, to bound a poison message's redeliveries.

One hash per batch (`StreamKeys.deliveries`): field ``"<message>:<page>"``, value the
number of times that message reached a consumer; it expires with the batch's staging data.
Ingest tasks are acknowledged late and rejected back to the queue when their pool child
dies, so a message that kills its child would loop forever; past `MAX_DELIVERIES` the
consumer ends the batch as failed (kind ``poison``) and acknowledges the message instead.
A message naming a version beyond the stream's sequence (of a stream deleted since) is
not counted, so it leaves no key behind.
"""

from __future__ import annotations

from redis import Redis

from app.store.keys import StreamKeys
from app.store.locks import BatchLease

# Deliveries of one ingest message before its batch is failed as poisoned.
MAX_DELIVERIES = 5

# KEYS: deliveries, seq. ARGV: message, ttl_ms, version. Returns the count (0: not counted).
_COUNT = """
if tonumber(redis.call('GET', KEYS[2]) or '0') < tonumber(ARGV[3]) then return 0 end
local count = redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return count
"""


class Deliveries:
    """Counts the deliveries of each ingest message of a batch."""

    def __init__(self, connection: Redis, prefix: str, ttl_ms: int) -> None:
        self.connection = connection
        self.prefix = prefix
        self.ttl_ms = ttl_ms
        self._count = connection.register_script(_COUNT)

    def count(self, lease: BatchLease, message: str) -> int:
        """Record one more delivery of `message`; return how many there have been."""
        keys = StreamKeys(self.prefix, lease.stream)
        return int(self._count(keys=[keys.deliveries(lease.version), keys.seq],
                               args=[message, self.ttl_ms, lease.version]))

    def poisoned(self, lease: BatchLease, message: str) -> bool:
        """Count this delivery; True once `message` has come more than MAX_DELIVERIES times."""
        return self.count(lease, message) > MAX_DELIVERIES
