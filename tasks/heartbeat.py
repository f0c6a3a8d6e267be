"""Keeps a batch's lease alive from a thread while the batch runs (fetch, or a settle).

The lease lives ``LEASE_TTL_SECONDS`` without renewal; the heartbeat renews it every
``LEASE_RENEW_SECONDS`` whatever the task's own thread is doing (waiting minutes for one
upstream page, or diffing a large batch), and stops when the task leaves the `with` block.
When the task's process dies, the heartbeat dies with it and the lease lapses one TTL
later, freeing the stream. A lease found gone (cancelled, lapsed or taken over) sets
`lost`; a renewal that cannot reach Redis is retried at the next beat, since the lease
still has most of its TTL left.
"""

from __future__ import annotations

import logging
import threading
from types import TracebackType

from redis.exceptions import RedisError

from app.store.locks import BatchLease, StreamLocks

log = logging.getLogger(__name__)


class Heartbeat:
    """Renews `lease` every `interval` seconds from a daemon thread until stopped."""

    def __init__(self, locks: StreamLocks, lease: BatchLease, interval: float) -> None:
        self.locks = locks
        self.lease = lease
        self.interval = interval
        self.lost = threading.Event()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"lease-{lease.stream}-{lease.version}")

    def _run(self) -> None:
        while not self._stopped.wait(self.interval):
            try:
                if not self.locks.extend(self.lease):  # the task decides what that means
                    self.lost.set()
                    log.info("lease gone stream=%s version=%s", self.lease.stream,
                             self.lease.version)
                    return
            except RedisError as exc:
                log.warning("lease not renewed stream=%s version=%s: %s", self.lease.stream,
                            self.lease.version, type(exc).__name__)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stopped.set()
        self._thread.join(timeout=2)  # a renewal blocked on Redis finishes on its own
