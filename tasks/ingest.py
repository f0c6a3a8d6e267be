"""The ingest consumer: Celery tasks on the ``ingest`` queue that store what the worker
fetched and publish a batch once it is whole (see `protocol` for the messages).

Acks are late and a lost worker's message is rejected back to the queue: storing a page
is idempotent, so a redelivered message never duplicates records or counts.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from celery import shared_task

from app import delivery, publish
from app.extensions import get_celery, get_store
from app.ops import metrics
from app.records import parse_time
from app.store.deliveries import MAX_DELIVERIES
from app.store.locks import BatchLease
from app.store.writer import WHOLE
from config import names
from tasks import protocol

log = logging.getLogger(__name__)

_RELIABLE = {"acks_late": True, "reject_on_worker_lost": True, "ignore_result": True}


def _publish(lease: BatchLease) -> str:
    store = get_store()
    verdict = publish.settle(store, lease.stream, lease.version)
    if verdict == "published":  # each destination of the stream gets the new version
        delivery.after_publish(store, get_celery(), lease.stream)
    if verdict not in ("waiting", "not_running"):  # this consumer settled it: count once
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


def _poisoned(lease: BatchLease, message: str) -> bool:
    """Fail the batch instead of taking `message` once more than MAX_DELIVERIES times.

    reject_on_worker_lost requeues a message whose pool child died; one that kills every
    child it reaches would loop forever, so its batch ends failed and the message is acked.
    """
    store = get_store()
    if not store.deliveries.poisoned(lease, message):
        return False
    store.writer.finish(lease.stream, lease.version, "failed",
                        {"kind": "poison", "message": f"{message} was delivered more than "
                                                      f"{MAX_DELIVERIES} times"})
    store.locks.release(lease)
    log.error("batch failed stream=%s version=%s kind=poison message=%s",
              lease.stream, lease.version, message)
    return True


@shared_task(name=names.INGEST_BEGIN, **_RELIABLE)
def begin(stream: str, version: int, token: str) -> None:
    """Record the start of a batch."""
    lease = BatchLease(stream, version, token)
    status = get_store().writer.begin(lease)
    log.info("batch started stream=%s version=%s status=%s", stream, version, status)


@shared_task(name=names.INGEST_PAGE, **_RELIABLE)
def page(stream: str, version: int, token: str, number: int, entries: dict[str, Any]) -> None:
    """Stage one page of records, then publish if the batch is now whole."""
    lease = BatchLease(stream, version, token)
    if _poisoned(lease, f"page:{number}"):
        return
    members, scores, count = protocol.unpack(entries)
    verdict = get_store().writer.store_packed(lease, number, members, scores, count)
    log.debug("page stream=%s version=%s page=%s records=%s verdict=%s",
              stream, version, number, count, verdict)
    if verdict == WHOLE:  # settling after any other page would only answer "waiting"
        _publish(lease)


@shared_task(name=names.INGEST_COMPLETE, **_RELIABLE)
def complete(stream: str, version: int, token: str, pages: int, records: int,
             info: dict[str, Any]) -> None:
    """Record the batch's totals, then publish if every page has arrived."""
    lease = BatchLease(stream, version, token)
    if _poisoned(lease, "complete"):
        return
    fields = {key: value if isinstance(value, str) else orjson.dumps(value).decode()
              for key, value in info.items()}
    get_store().writer.complete(lease, pages, records, fields)
    _publish(lease)


@shared_task(name=names.INGEST_FAIL, **_RELIABLE)
def fail(stream: str, version: int, token: str, error: dict[str, Any]) -> None:
    """End a batch as failed: it is never published and its lock is freed."""
    store = get_store()
    status = store.writer.finish(stream, version, "failed", error)
    if status == "failed":
        metrics.observe_batch(stream, "failed")
    store.locks.release(BatchLease(stream, version, token))
    log.warning("batch failed stream=%s version=%s status=%s kind=%s",
                stream, version, status, error.get("kind"))
