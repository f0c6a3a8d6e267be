"""The shared request budget of a stream, and what the upstream said about its limits.

Two strings per stream (`StreamKeys.rate_next`, `.rate_limited_until`; the layout is in
`keys`): the next free request slot and the time until which every worker waits. Both live only
as long as they matter (PX). Each worker asks `acquire` before a request: the script
hands out slots `interval` apart on Redis's own clock, so workers on several hosts share
one budget, and never earlier than a block learnt from 429 / Retry-After or
``X-RateLimit-Remaining: 0``. While a wait is pending, ``until`` tells `GET /streams/<s>`.
"""

from __future__ import annotations

from redis import Redis

from app.records import iso_at
from app.store.keys import StreamKeys

# KEYS: next, until. ARGV: interval ms (0: no budget). Returns {wait ms, now ms}.
ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local blocked = tonumber(redis.call('GET', KEYS[2]) or '0')
local slot = math.max(now, blocked)
if interval > 0 then
  slot = math.max(slot, tonumber(redis.call('GET', KEYS[1]) or '0'))
  redis.call('SET', KEYS[1], slot + interval, 'PX', slot + interval - now + 1000)
end
local wait = slot - now
if wait > 0 and slot > blocked then
  redis.call('SET', KEYS[2], slot, 'PX', wait)
end
return {wait, now}
"""

# KEYS: until. ARGV: delay ms. Moves the block later, never earlier. Returns until ms.
BLOCK = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local target = now + tonumber(ARGV[1])
local blocked = tonumber(redis.call('GET', KEYS[1]) or '0')
if target > blocked then
  redis.call('SET', KEYS[1], target, 'PX', tonumber(ARGV[1]))
  return target
end
return blocked
"""



class RateLimits:
    """Request slots and learnt blocks of every stream, shared by all workers."""

    def __init__(self, connection: Redis, prefix: str) -> None:
        self.connection = connection
        self.prefix = prefix
        self._acquire = connection.register_script(ACQUIRE)
        self._block = connection.register_script(BLOCK)

    def acquire(self, stream: str, interval_seconds: float = 0.0) -> float:
        """Take the next request slot; return how many seconds to wait before using it."""
        keys = StreamKeys(self.prefix, stream)
        wait_ms, _ = self._acquire(keys=[keys.rate_next, keys.rate_limited_until],
                                   args=[round(interval_seconds * 1000)])
        return max(int(wait_ms), 0) / 1000.0

    def block(self, stream: str, seconds: float) -> str:
        """Make every worker wait `seconds` from now (never shortens a block); return until."""
        keys = StreamKeys(self.prefix, stream)
        until = self._block(keys=[keys.rate_limited_until],
                            args=[max(round(seconds * 1000), 1)])
        return iso_at(int(until) / 1000)

    def limited_until(self, stream: str) -> str | None:
        """Return when the stream's current rate-limit wait ends (ISO), or None."""
        raw = self.connection.get(StreamKeys(self.prefix, stream).rate_limited_until)
        return iso_at(int(raw) / 1000) if raw else None
