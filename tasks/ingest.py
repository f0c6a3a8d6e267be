"""The ingest consumer: Celery tasks on the ``ingest`` queue that store what the worker
fetched and publish a batch once it is whole (see `protocol` for the messages).

Acks are late and a lost worker's message is rejected back to the queue: storing a page
is idempotent, so a redelivered message never duplicates records or counts, and a
redelivered last page (or totals) of a whole batch settles it again, so a consumer that
died while settling is replaced. A settle keeps the batch's lease alive while it runs. A
bad record, staging data that expired, a batch over its budget (too_large), a Redis that
refuses writes for memory (store_full) or any unexpected error fails the batch at once,
with a reason; only a lost Redis leaves the message to come back once Redis is there.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Callable, Iterator
from typing import Any

import orjson
from celery import shared_task
from flask import current_app
from redis import RedisError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from app import delivery, publish
from app.exceptions import BadRecord, out_of_memory
from app.extensions import get_celery, get_store
from app.ops import metrics
from app.records import parse_time
from app.store.connection import UNAVAILABLE
from app.store.deliveries import MAX_DELIVERIES
from app.store.locks import BatchLease
from app.store.writer import STAGING_EXPIRED, TOO_LARGE, WHOLE
from config import defaults, names
from tasks import protocol
from tasks.heartbeat import Heartbeat

log = logging.getLogger(__name__)

_RELIABLE = {"acks_late": True, "reject_on_worker_lost": True, "ignore_result": True,
             # Every step is idempotent: one that met a store failing over runs again.
             "autoretry_for": UNAVAILABLE, "retry_backoff": True, "retry_jitter": False,
             "retry_backoff_max": defaults.STORE_RETRY_BACKOFF_MAX,
             "max_retries": defaults.STORE_RETRIES}


def _fails_when_full(task: Callable[..., None]) -> Callable[..., None]:
    """Fail the batch (`store_full`, staging freed) when Redis refuses a write for memory."""
    @functools.wraps(task)
    def run(stream: str, version: int, token: str, *args: Any) -> None:
        try:
            task(stream, version, token, *args)
        except RedisError as exc:
            if not out_of_memory(exc):
                raise
            if get_store().writer.fail_full(BatchLease(stream, version, token)) == "failed":
                metrics.observe_batch(stream, "failed")
            log.error("batch failed stream=%s version=%s kind=store_full", stream, version)
    return run


def _publish(lease: BatchLease) -> str:
    store = get_store()
    with Heartbeat(store.locks, lease, current_app.config["LEASE_RENEW_SECONDS"]):
        verdict = publish.settle(store, lease.stream, lease.version)
    if verdict == "published":  # each destination of the stream gets the new version
        delivery.after_publish(store, get_celery(), lease.stream)
    if verdict == "staging_expired":
        _end_failed(lease, {"kind": "staging_expired",
                            "message": "the batch's staging data expired before it was whole; "
                                       "what is stored falls short of the totals"})
    elif verdict not in ("waiting", "not_running"):  # this consumer settled it: count once
        _observe(store.reader.batch_or_none(lease.stream, lease.version) or {}, lease,
                 verdict)
    return verdict


def _observe(batch: dict[str, Any], lease: BatchLease, verdict: str) -> None:
    """Count a settled batch; time and size it when it was published."""
    started = parse_time(batch.get("started_at"))
    published = parse_time(batch.get("published_at"))
    seconds = (published - started).total_seconds() if started and published else None
    records = int(batch["records"]) if verdict == "published" and "records" in batch else None
    metrics.observe_batch(lease.stream, verdict, seconds if verdict == "published" else None,
                          records)


def _end_failed(lease: BatchLease, error: dict[str, Any]) -> str:
    """End the batch as failed with `error` (never published) and free its lease."""
    store = get_store()
    status = store.writer.finish(lease.stream, lease.version, "failed", error,
                                 token=lease.token)
    if status == "failed":
        metrics.observe_batch(lease.stream, "failed")
    store.locks.release(lease)
    log.warning("batch failed stream=%s version=%s status=%s kind=%s",
                lease.stream, lease.version, status, error.get("kind"))
    return status


@contextlib.contextmanager
def _failing_batch(lease: BatchLease, step: str) -> Iterator[None]:
    """Fail the batch on any error of `step`, except a lost Redis (nothing can be written:
    the message comes back, see the module docstring) or a full one (`_fails_when_full`
    ends the batch store_full)."""
    try:
        yield
    except BadRecord as exc:  # acknowledged: the batch is over
        _end_failed(lease, exc.to_dict())
    except (RedisConnectionError, RedisTimeoutError):
        raise
    except Exception as exc:
        if isinstance(exc, RedisError) and out_of_memory(exc):
            raise
        with contextlib.suppress(Exception):
            _end_failed(lease, {"kind": "internal",
                                "message": f"ingest {step} raised {type(exc).__name__}"})
        raise


def _poisoned(lease: BatchLease, message: str) -> bool:
    """Fail the batch instead of taking `message` once more than MAX_DELIVERIES times.

    reject_on_worker_lost requeues a message whose pool child died; one that kills every
    child it reaches would loop forever, so its batch ends failed and the message is acked.
    """
    if not get_store().deliveries.poisoned(lease, message):
        return False
    _end_failed(lease, {"kind": "poison",
                        "message": f"{message} was delivered more than {MAX_DELIVERIES} times"})
    return True


@shared_task(name=names.INGEST_BEGIN, **_RELIABLE)
def begin(stream: str, version: int, token: str) -> None:
    """Record the start of a batch."""
    lease = BatchLease(stream, version, token)
    with _failing_batch(lease, "begin"):
        status = get_store().writer.begin(lease)
        log.info("batch started stream=%s version=%s status=%s", stream, version, status)


@shared_task(name=names.INGEST_PAGE, **_RELIABLE)
@_fails_when_full
def page(stream: str, version: int, token: str, number: int, entries: dict[str, Any]) -> None:
    """Stage one page of records, then publish if the batch is now whole."""
    lease = BatchLease(stream, version, token)
    with _failing_batch(lease, f"page {number}"):
        part, parts = protocol.part_of(entries)
        # Each part is a message of its own: a page of many parts is not one redelivered.
        if _poisoned(lease, f"page:{number}" if parts == 1 else f"page:{number}/{part}"):
            return
        members, scores, count = protocol.unpack(entries)
        verdict = get_store().writer.store_packed(lease, number, members, scores, count,
                                                  (part, parts), protocol.keyed_of(entries))
        log.debug("page stream=%s version=%s page=%s records=%s verdict=%s",
                  stream, version, number, count, verdict)
        if verdict == STAGING_EXPIRED:
            _end_failed(lease, {"kind": "staging_expired", "page": number,
                                "message": "the batch's staging data expired before page "
                                           f"{number} arrived; it can never be whole"})
        elif verdict == TOO_LARGE:
            metrics.observe_batch(stream, "failed")
            log.warning("batch failed stream=%s version=%s kind=too_large page=%s",
                        stream, version, number)
        elif verdict == WHOLE:  # settling after any other page would only answer "waiting"
            _publish(lease)


@shared_task(name=names.INGEST_COMPLETE, **_RELIABLE)
@_fails_when_full
def complete(stream: str, version: int, token: str, pages: int, records: int,
             info: dict[str, Any]) -> None:
    """Record the batch's totals, then publish if every page has arrived."""
    lease = BatchLease(stream, version, token)
    with _failing_batch(lease, "complete"):
        if _poisoned(lease, "complete"):
            return
        fields = {key: value if isinstance(value, str) else orjson.dumps(value).decode()
                  for key, value in info.items()}
        get_store().writer.complete(lease, pages, records, fields)
        _publish(lease)


@shared_task(name=names.INGEST_FAIL, **_RELIABLE)
def fail(stream: str, version: int, token: str, error: dict[str, Any]) -> None:
    """End a batch as failed: it is never published and its lease is freed."""
    _end_failed(BatchLease(stream, version, token), error)
