"""Delivery state of each (stream, destination): one hash, plus the lock of the delivery.

Layout in `keys` (``P:{s}:dst:<d>`` and its ``:lock``). The hash is what the API shows and
what the sweep decides on: the version last delivered (a copy: the destination itself
records what it holds, and the delivery task checks that before loading), the last
delivery's time, mode and rows, the last error, the failures in a row and when the next
attempt is due (exponential backoff), and reloads asked for against reloads done.
The lock is a redis-py `Lock` (a token with a PX timeout) that the running delivery
renews; for a destination one process at a time may write (duckdb) it covers the whole
destination, else one stream's deliveries to it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from redis import Redis
from redis.lock import Lock

from app.store.keys import StreamKeys, destination_lock_key


@dataclass(frozen=True)
class DeliveryState:
    """What the store knows of one stream's deliveries to one destination."""

    delivered_version: int = 0
    delivered_at: str | None = None
    published_at: str | None = None
    mode: str | None = None
    rows: int | None = None
    error: str | None = None
    error_at: str | None = None
    failures: int = 0
    retry_at_ms: int = 0
    reloads_asked: int = 0
    reloads_done: int = 0

    @property
    def reload_pending(self) -> bool:
        return self.reloads_asked > self.reloads_done

    def due(self, now_ms: int) -> bool:
        """Tell whether the backoff after the last failure is over."""
        return self.retry_at_ms <= now_ms


_INTS = ("delivered_version", "rows", "failures", "retry_at_ms", "reloads_asked",
         "reloads_done")


def _decode(raw: dict[str, Any]) -> DeliveryState:
    fields: dict[str, Any] = {key: (int(value) if key in _INTS else value)
                              for key, value in raw.items()
                              if key in DeliveryState.__dataclass_fields__}
    return DeliveryState(**fields)


def backoff_seconds(failures: int, base: int, cap: int) -> int:
    """Return the wait after `failures` failures in a row: base, 2 x base, ... up to cap."""
    return min(cap, base * 2 ** max(0, min(failures, 32) - 1))


class DeliveryStates:
    """Reads and writes the delivery state of every (stream, destination)."""

    def __init__(self, connection: Redis, prefix: str) -> None:
        self.connection = connection
        self.prefix = prefix

    def _key(self, stream: str, destination: str) -> str:
        return StreamKeys(self.prefix, stream).delivery(destination)

    def get(self, stream: str, destination: str) -> DeliveryState:
        """Return the state (all defaults before the first attempt)."""
        raw: Any = self.connection.hgetall(self._key(stream, destination))
        return _decode(raw)

    def succeeded(self, stream: str, destination: str, *, version: int, published_at: str,
                  delivered_at: str, mode: str, rows: int) -> None:
        """Record a delivered version; the failures and the backoff are over."""
        with self.connection.pipeline() as pipe:
            pipe.hset(self._key(stream, destination), mapping={
                "delivered_version": version, "published_at": published_at,
                "delivered_at": delivered_at, "mode": mode, "rows": rows, "failures": 0})
            pipe.hdel(self._key(stream, destination), "retry_at_ms")
            pipe.execute()

    def holds(self, stream: str, destination: str, version: int) -> None:
        """Record the version the destination said it holds (when the store lost track)."""
        self.connection.hset(self._key(stream, destination), "delivered_version", version)

    def failed(self, stream: str, destination: str, *, message: str, at: str, base: int,
               cap: int) -> int:
        """Record a failed attempt; return the seconds until the next one is due."""
        key = self._key(stream, destination)
        failures = int(self.connection.hincrby(key, "failures", 1))
        wait = backoff_seconds(failures, base, cap)
        self.connection.hset(key, mapping={"error": message, "error_at": at,
                                           "retry_at_ms": int(time.time() * 1000) + wait * 1000})
        return wait

    def ask_reload(self, stream: str, destination: str) -> None:
        """Ask for a full reload at the next delivery, due at once."""
        with self.connection.pipeline() as pipe:
            pipe.hincrby(self._key(stream, destination), "reloads_asked", 1)
            pipe.hdel(self._key(stream, destination), "retry_at_ms")
            pipe.execute()

    def reload_done(self, stream: str, destination: str, asked: int) -> None:
        """Record that the reloads asked for up to `asked` are done."""
        self.connection.hset(self._key(stream, destination), "reloads_done", asked)

    def published_after(self, stream: str, delivered: int, current: int
                        ) -> list[tuple[int, str | None]]:
        """Return (version, published_at) of the published versions a destination lacks.

        Those after `delivered` up to `current`, oldest first, as far as the history goes;
        all of them up to `current` when `delivered` is ahead (the store was reset).
        """
        keys = StreamKeys(self.prefix, stream)
        low = f"({delivered}" if delivered < current else "-inf"
        found: Any = self.connection.zrangebyscore(keys.batches, low, current)
        versions = [int(version) for version in found]
        with self.connection.pipeline(transaction=False) as pipe:
            for version in versions:
                pipe.hmget(keys.batch(version), "status", "published_at")
            rows = pipe.execute()
        return [(version, published) for version, (status, published)
                in zip(versions, rows, strict=True) if status == "complete"]

    def _lock_name(self, stream: str, destination: str, single_writer: bool) -> str:
        if single_writer:
            return destination_lock_key(self.prefix, destination)
        return StreamKeys(self.prefix, stream).delivery_lock(destination)

    def lock(self, stream: str, destination: str, *, single_writer: bool,
             timeout: int) -> Lock:
        """Return the (unacquired) lock of the delivery; its token is shared by threads."""
        return self.connection.lock(self._lock_name(stream, destination, single_writer),
                                    timeout=timeout, blocking=False, thread_local=False)

    def locked(self, stream: str, destination: str, *, single_writer: bool) -> bool:
        """Tell whether a delivery holds the lock now."""
        return bool(self.connection.exists(self._lock_name(stream, destination,
                                                           single_writer)))
