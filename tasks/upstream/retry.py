"""Retries of one upstream request with tenacity: what is retried and how long to wait.

Connection errors, timeouts, 5xx and 429 are retried with exponential backoff and jitter,
or after the (capped) Retry-After the upstream asked for; any other error fails at once.
A request stops after ``max_attempts`` or when the next wait would take the total past
``max_retry_wait``; the error then says how many attempts were made.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, wait_exponential_jitter

from app.exceptions import UpstreamError
from app.ops.metrics import observe_retry
from config.source import Source

log = logging.getLogger(__name__)
Result = TypeVar("Result")
RETRIED_KINDS = frozenset({"timeout", "connection"})


def retryable(exc: BaseException) -> bool:
    """Tell whether a failed attempt is worth another one."""
    if not isinstance(exc, UpstreamError):
        return False
    if exc.kind in RETRIED_KINDS:
        return True
    return exc.kind == "http_status" and exc.status is not None and (
        exc.status == 429 or exc.status >= 500)


class RetryHints:
    """What the last response said about when to try again (Retry-After, seconds)."""

    def __init__(self) -> None:
        self.retry_after: float | None = None


def run_with_retries(call: Callable[[], Result], source: Source, hints: RetryHints, *,
                     sleep: Callable[[float], None] = time.sleep) -> Result:
    """Return `call()`, retried per the source's policy; failures carry `attempts`."""
    backoff = wait_exponential_jitter(multiplier=source.backoff_initial, max=source.backoff_max,
                                      jitter=source.backoff_initial)

    def wait(state: RetryCallState) -> float:
        hint, hints.retry_after = hints.retry_after, None
        return min(hint, source.retry_after_max) if hint is not None else backoff(state)

    def stop(state: RetryCallState) -> bool:
        return (state.attempt_number >= source.max_attempts
                or state.idle_for + state.upcoming_sleep > source.max_retry_wait)

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        observe_retry(getattr(exc, "kind", None))
        log.info("upstream retry attempt=%s kind=%s status=%s wait=%.3f",
                 state.attempt_number, getattr(exc, "kind", None),
                 getattr(exc, "status", None), state.upcoming_sleep)

    retrying = Retrying(retry=retry_if_exception(retryable), wait=wait, stop=stop,
                        before_sleep=before_sleep, reraise=True, sleep=sleep)
    try:
        return retrying(call)
    except UpstreamError as exc:
        exc.attempts = int(retrying.statistics.get("attempt_number", 1))
        raise
