"""The beat process's scheduler: RedBeat's, riding out a Redis restart at any moment.

RedBeat takes its lock once, in a `beat_init` handler that blocks until it gets it. A
Redis restart while a standby beat waits there raises ConnectionError; Celery swallows it,
the first tick then fails on the missing lock (AttributeError) and beat exits for good.
This scheduler owns its lock instead: every tick takes it if it is free (a standby keeps
trying), renews it while it is held, and goes back to standby when it was lost (expired
during an outage, or taken over); a tick, or the start-up, that cannot reach Redis logs a
warning and tries again shortly. So does one that a full Redis refuses (over its
`maxmemory`, Redis refuses the commands RedBeat queues in a MULTI: OutOfMemoryError, or
ExecAbortError at EXEC): beat keeps running and ticks again once Redis has room. It is
Celery's ``beat_scheduler`` (config/settings.py).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery.signals import beat_init
from redbeat.schedulers import (
    LUA_EXTEND_TO_SCRIPT,
    RedBeatScheduler,
    acquire_distributed_beat_lock,
    get_redis,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ExecAbortError, LockError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.lock import Lock

from app.exceptions import out_of_memory

log = logging.getLogger(__name__)

_UNREACHABLE = (RedisConnectionError, RedisTimeoutError)


def _refused(exc: RedisError) -> bool:
    """Tell whether Redis refused a command for memory (directly, or aborting a MULTI)."""
    return isinstance(exc, ExecAbortError) or out_of_memory(exc)


class Scheduler(RedBeatScheduler):
    """RedBeat's scheduler that takes its lock tick by tick and waits out Redis outages."""

    lock: Lock | None = None
    #: Seconds to wait before trying Redis again, during an outage.
    retry_seconds = 1.0
    #: Longest wait between two tries at start-up, in seconds.
    max_start_wait = 10.0

    def __init__(self, app: Any, *args: Any, **kwargs: Any) -> None:
        # RedBeat's handler would block on the lock and die with Redis: this scheduler
        # takes the lock itself, in `tick`.
        beat_init.disconnect(acquire_distributed_beat_lock)
        super().__init__(app, *args, **kwargs)

    def setup_schedule(self) -> None:
        """Set up RedBeat's static entries, waiting for Redis if it is not there yet."""
        wait = self.retry_seconds
        while True:
            try:
                super().setup_schedule()
                return
            except RedisError as exc:
                if not isinstance(exc, _UNREACHABLE) and not _refused(exc):
                    raise
                log.warning("beat: Redis unreachable or full at start-up (%s); retrying in "
                            "%.0f s", type(exc).__name__, wait)
                time.sleep(wait)
                wait = min(wait * 2, self.max_start_wait)

    def tick(self, *args: Any, **kwargs: Any) -> float:
        """Send the due entries if this beat holds the lock; return the seconds to sleep."""
        try:
            if not self._hold_lock():
                return float(self.max_interval)
            return float(super().tick(*args, **kwargs))
        except LockError:
            log.warning("beat: lost the lock (it expired or another beat took it); standby")
            self.lock = None
            return self.retry_seconds
        except _UNREACHABLE as exc:
            log.warning("beat: Redis unreachable (%s); retrying in %.0f s",
                        type(exc).__name__, self.retry_seconds)
            return self.retry_seconds
        except RedisError as exc:
            if not _refused(exc):
                raise
            log.warning("beat: Redis refused the tick, it is full (%s); retrying in %.0f s",
                        type(exc).__name__, self.retry_seconds)
            return self.retry_seconds

    def _hold_lock(self) -> bool:
        """Return True if this beat holds the lock, taking it now if it is free."""
        if self.lock is not None:
            return True
        client = get_redis(self.app)
        lock: Lock = client.lock(self.lock_key, timeout=self.lock_timeout,
                                 sleep=self.max_interval)
        # RedBeat's extend sets the lock's life to the timeout instead of adding to it.
        lock.lua_extend = client.register_script(LUA_EXTEND_TO_SCRIPT)
        if not lock.acquire(blocking=False):
            return False
        log.info("beat: Acquired lock")
        self.lock = lock
        return True

    def close(self) -> None:
        """Release the lock if Redis can be reached; it expires on its own otherwise."""
        try:
            super().close()
        except RedisError as exc:
            log.warning("beat: could not release the lock (%s); it expires on its own",
                        type(exc).__name__)
            self.lock = None
