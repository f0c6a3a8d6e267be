"""The per-stream batch lock, version sequence and fetch receipts: strings per stream.

The lock holds ``"<token>:<version>"`` (`BatchLease.value`) with a PX timeout that covers
the fetch task's hard time limit plus slack; the sequence is the version counter. Taking
the lock and handing out the next version is one Lua step, so at most one batch per stream
is in flight and versions only grow. A fetch message's receipt (keyed by its task id)
means a redelivered or duplicated message (same task id) never starts a second batch.
The running fetch and the ingest consumer extend the lock as pages flow; publish and fail
release it (compare-and-delete on the value).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from redis import Redis

from app.store.keys import StreamKeys
from app.store.replication import NO_REPLICAS, Replicas

_ACQUIRE_ONCE = """
if redis.call('EXISTS', KEYS[3]) == 1 then return -1 end
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local version = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. version, 'PX', ARGV[2])
redis.call('SET', KEYS[3], version, 'PX', ARGV[3])
return version
"""

# How long a fetch message's receipt is kept, in ms: longer than any redelivery delay
# (the broker's visibility timeout, one hour by default).
RECEIPT_TTL_MS = 24 * 3600 * 1000

_EXTEND = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(frozen=True)
class BatchLease:
    """The right to run batch `version` of `stream`, proven by `value` in the lock key."""

    stream: str
    version: int
    token: str

    @property
    def value(self) -> str:
        return f"{self.token}:{self.version}"

    @classmethod
    def parse(cls, stream: str, value: object) -> BatchLease:
        """Return the lease whose `value` is stored in the lock key."""
        token, _, version = str(value).rpartition(":")
        return cls(stream, int(version), token)


class StreamLocks:
    """Takes, extends and releases the batch lock of a stream."""

    def __init__(self, connection: Redis, prefix: str, timeout_ms: int,
                 replicas: Replicas = NO_REPLICAS) -> None:
        self.connection = connection
        self.prefix = prefix
        self.timeout_ms = timeout_ms
        self.replicas = replicas
        self._acquire_once = connection.register_script(_ACQUIRE_ONCE)
        self._extend = connection.register_script(_EXTEND)
        self._release = connection.register_script(_RELEASE)

    def acquire_once(self, stream: str, receipt: str) -> BatchLease | str:
        """Take the lock for the fetch message `receipt` (its task id) at most once.

        Return the lease, or why not: "batch_in_flight" or "duplicate" (this message
        already started a batch).
        """
        keys = StreamKeys(self.prefix, stream)
        token = secrets.token_hex(8)
        version = self._acquire_once(keys=[keys.lock, keys.seq, keys.fetch_receipt(receipt)],
                                     args=[token, self.timeout_ms, RECEIPT_TTL_MS])
        if version is None:
            return "batch_in_flight"
        if int(version) < 0:
            return "duplicate"
        self.replicas.wait(keys.seq)  # a failover must never hand this version out again
        return BatchLease(stream=stream, version=int(version), token=token)

    def extend(self, lease: BatchLease) -> bool:
        """Renew the lock; False means it was lost (expired, cancelled or taken over)."""
        keys = StreamKeys(self.prefix, lease.stream)
        return bool(self._extend(keys=[keys.lock], args=[lease.value, self.timeout_ms]))

    def release(self, lease: BatchLease) -> bool:
        """Drop the lock if it is still ours."""
        keys = StreamKeys(self.prefix, lease.stream)
        return bool(self._release(keys=[keys.lock], args=[lease.value]))

    def holder(self, stream: str) -> tuple[str, int] | None:
        """Return (token, version) of the batch in flight, or None."""
        raw = self.connection.get(StreamKeys(self.prefix, stream).lock)
        if not raw:
            return None
        lease = BatchLease.parse(stream, raw)
        return lease.token, lease.version
