"""Waiting for the upstream's rate limit: the shared budget and what the headers say.

Before each request `Throttle.before_request` takes a slot of the stream's budget from
Redis (`app.store.ratelimit`), which also holds any block learnt from the upstream; after
each response `learn` reads ``Retry-After`` (seconds or HTTP-date) on 429/503 and
``X-RateLimit-Remaining: 0`` with ``X-RateLimit-Reset`` (epoch or seconds), and blocks
every worker of the stream until then. Every wait is capped by ``retry_after_max``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime

from app.ops.metrics import observe_rate_limit_wait
from app.store.ratelimit import RateLimits
from config.source import Source

log = logging.getLogger(__name__)

# An X-RateLimit-Reset above this is an epoch time, below it a number of seconds.
EPOCH_THRESHOLD = 1_000_000_000


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Return the wait a Retry-After value asks for (seconds or HTTP-date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        return None
    return max(moment.timestamp() - (time.time() if now is None else now), 0.0)


def reset_seconds(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Return the wait X-RateLimit-Remaining/Reset ask for when the budget is spent."""
    remaining = headers.get("X-RateLimit-Remaining")
    reset = headers.get("X-RateLimit-Reset")
    if remaining is None or reset is None:
        return None
    try:
        if float(remaining) > 0:
            return None
        value = float(reset)
    except ValueError:
        return None
    if value > EPOCH_THRESHOLD:
        value -= time.time() if now is None else now
    return max(value, 0.0)


class Throttle:
    """The rate-limit waits of one stream's fetch."""

    def __init__(self, source: Source, limits: RateLimits | None, stream: str | None, *,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.interval = source.rate_limit.interval_seconds if source.rate_limit else 0.0
        self.cap = source.retry_after_max
        self.limits = limits if stream else None
        self.stream = stream or ""
        self.sleep = sleep
        self._local_next = 0.0
        self._local_block = 0.0

    def before_request(self) -> None:
        """Wait for the next request slot of the stream."""
        if self.limits is not None:
            wait = self.limits.acquire(self.stream, self.interval)
        else:
            now = time.monotonic()
            slot = max(now, self._local_next, self._local_block)
            self._local_next = slot + self.interval
            wait = slot - now
        if wait > 0:
            log.info("rate limit wait stream=%s seconds=%.3f", self.stream, wait)
            observe_rate_limit_wait(self.stream, min(wait, self.cap))
            self.sleep(min(wait, self.cap))

    def learn(self, status: int, headers: Mapping[str, str]) -> float | None:
        """Block the stream as the response asks; return the Retry-After wait, if any."""
        retry_after = None
        if status in (429, 503):
            retry_after = retry_after_seconds(headers.get("Retry-After"))
        wait = retry_after if retry_after is not None else reset_seconds(headers)
        if wait is None or wait <= 0:
            return retry_after
        wait = min(wait, self.cap)
        if self.limits is not None:
            until = self.limits.block(self.stream, wait)
            log.info("rate limited stream=%s status=%s until=%s", self.stream, status, until)
        elif retry_after is None:
            # A Retry-After is waited by the retry itself; only X-RateLimit blocks here.
            self._local_block = time.monotonic() + wait
        return None if retry_after is None else min(retry_after, self.cap)
