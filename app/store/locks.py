"""The per-stream batch lease, version sequence and fetch receipts: strings per stream.

The lease (the stream's batch lock) holds ``"<token>:<version>"`` (`BatchLease.value`)
with a short PX (``LEASE_TTL_SECONDS``) that the running batch renews every
``LEASE_RENEW_SECONDS`` from a heartbeat thread (`tasks.heartbeat`), however long one
page takes, so a batch whose worker died frees its stream one TTL after the last renewal.
The sequence is the version counter. Taking the lease and handing out the next version is
one Lua step, so at most one batch per stream is in flight and versions only grow; the
same step ends the previous batch `abandoned` (kind ``worker_lost``) when its lease lapsed
while it was still running. A fetch message's receipt (keyed by its task id) means a
redelivered or duplicated message (same task id) never starts a second batch. Publish and
fail release the lease (compare-and-delete on the value).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

import orjson
from redis import Redis

from app.records import now_iso
from app.store import scripts
from app.store.keys import StreamKeys
from app.store.replication import NO_REPLICAS, Replicas

# How long a fetch message's receipt is kept, in ms: longer than any redelivery delay
# (the broker's visibility timeout, one hour by default).
RECEIPT_TTL_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class BatchLease:
    """The right to run batch `version` of `stream`, proven by `value` in the lock key.

    `took_over` is the version of a batch whose lapsed lease this one replaced (ended
    `abandoned` when the lease was taken), or 0.
    """

    stream: str
    version: int
    token: str
    took_over: int = field(default=0, compare=False)

    @property
    def value(self) -> str:
        return f"{self.token}:{self.version}"

    @classmethod
    def parse(cls, stream: str, value: object) -> BatchLease:
        """Return the lease whose `value` is stored in the lock key."""
        token, _, version = str(value).rpartition(":")
        return cls(stream, int(version), token)


def lapsed_error(lease_ms: int) -> dict[str, str]:
    """Return the error of a batch whose lease lapsed while it ran."""
    return {"kind": "worker_lost",
            "message": f"its lease lapsed: no worker renewed it for {lease_ms // 1000} s (the "
                       "fetch worker or ingest consumer was killed or lost Redis mid-batch)"}


class StreamLocks:
    """Takes, renews and releases the batch lease of a stream."""

    def __init__(self, connection: Redis, prefix: str, timeout_ms: int,
                 replicas: Replicas = NO_REPLICAS) -> None:
        self.connection = connection
        self.prefix = prefix
        self.timeout_ms = timeout_ms
        self.replicas = replicas
        self._acquire = connection.register_script(scripts.ACQUIRE_LEASE)
        self._renew = connection.register_script(scripts.RENEW_LEASE)
        self._release = connection.register_script(scripts.RELEASE_LEASE)

    def acquire_once(self, stream: str, receipt: str) -> BatchLease | str:
        """Take the lease for the fetch message `receipt` (its task id) at most once.

        Return the lease, or why not: "batch_in_flight" or "duplicate" (this message
        already started a batch).
        """
        keys = StreamKeys(self.prefix, stream)
        token = secrets.token_hex(8)
        error = orjson.dumps(lapsed_error(self.timeout_ms)).decode()
        for _ in range(10):  # the sequence only moves when another fetch took the lease
            last = int(str(self.connection.get(keys.seq) or 0))
            answer = self._acquire(
                keys=[keys.lock, keys.seq, keys.fetch_receipt(receipt), keys.batch(last),
                      keys.records(last), keys.pages(last), keys.batches,
                      keys.deliveries(last), keys.digests(last), keys.changes(last),
                      keys.current, keys.page_changes(last)],
                args=[token, self.timeout_ms, RECEIPT_TTL_MS, last, now_iso(), error])
            if answer is None:
                return "batch_in_flight"
            if isinstance(answer, list):
                self.replicas.wait(keys.seq)  # a failover must never hand it out again
                return BatchLease(stream, int(answer[0]), token, took_over=int(answer[1]))
            if int(answer) == -1:
                return "duplicate"
        return "batch_in_flight"

    def extend(self, lease: BatchLease) -> bool:
        """Renew the lease; False means it was lost (lapsed, cancelled or taken over)."""
        keys = StreamKeys(self.prefix, lease.stream)
        return bool(self._renew(keys=[keys.lock], args=[lease.value, self.timeout_ms]))

    def release(self, lease: BatchLease) -> bool:
        """Drop the lease if it is still ours."""
        keys = StreamKeys(self.prefix, lease.stream)
        return bool(self._release(keys=[keys.lock], args=[lease.value]))

    def holder(self, stream: str) -> tuple[str, int] | None:
        """Return (token, version) of the batch in flight, or None."""
        raw = self.connection.get(StreamKeys(self.prefix, stream).lock)
        if not raw:
            return None
        lease = BatchLease.parse(stream, raw)
        return lease.token, lease.version
