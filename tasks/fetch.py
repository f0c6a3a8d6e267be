"""The fetch task: one batch of one stream, from upstream pages to ingest messages.

Beat sends ``ds.fetch.stream`` on each tick. The task takes the stream's batch lease and
its next version in one step (at most one batch in flight), keeps the lease alive from a
heartbeat thread, pages through the upstream (reading the next page in a thread while it
works on the current one, `tasks.upstream.readahead`), runs each page through the stream's
middleware and sends it to the ingest queue, then announces the totals. Any failure ends
the batch as failed; the served version stays. A worker that dies stops its heartbeat, so
the stream is free again one lease TTL later.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import replace
from typing import Any

from celery import Task, shared_task
from celery.exceptions import SoftTimeLimitExceeded
from flask import current_app

from app.exceptions import UpstreamError
from app.extensions import Store, get_store
from app.ops import metrics
from app.ops.logs import bind
from app.records import now_iso
from app.store.locks import BatchLease
from config import names
from config.streams import StreamDefinition
from tasks.batch_source import BatchSource
from tasks.heartbeat import Heartbeat
from tasks.middleware import BatchContext, build_chain
from tasks.protocol import Keyer, Outbox
from tasks.schema_infer import SchemaBuilder
from tasks.upstream import Pager
from tasks.upstream.readahead import ReadAhead

log = logging.getLogger(__name__)


class BatchFailed(Exception):
    """Raised once a failed batch is recorded, so the task ends FAILURE in Flower.

    The message is already acknowledged (``acks_late=False``), so raising re-runs nothing;
    it is an expected exception (``throws``): Celery logs it without a traceback.
    """


@shared_task(name=names.FETCH_STREAM, bind=True, acks_late=False, ignore_result=True,
             throws=(BatchFailed,))
def fetch_stream(self: Task, stream: str) -> dict[str, Any]:
    """Fetch one batch of `stream` and hand it to data-streams."""
    store = get_store()
    definition = store.definitions.get(stream)
    if definition is None:
        log.warning("fetch skipped stream=%s reason=undefined", stream)
        return {"stream": stream, "skipped": "undefined"}
    # One batch per fetch message: a redelivered or duplicated tick (same id) is a no-op.
    lease = store.locks.acquire_once(stream, str(self.request.id))
    if isinstance(lease, str):
        log.info("fetch skipped stream=%s reason=%s", stream, lease)
        return {"stream": stream, "skipped": lease}
    if lease.took_over:
        metrics.observe_batch(stream, "abandoned")
        log.warning("batch abandoned stream=%s version=%s kind=worker_lost: its lease lapsed; "
                    "batch %s took over", stream, lease.took_over, lease.version)
    outbox = Outbox(current_app.extensions["celery"], lease)
    with Heartbeat(store.locks, lease, current_app.config["LEASE_RENEW_SECONDS"]) as heartbeat:
        try:
            outbox.begin()
            log.info("batch started stream=%s version=%s", stream, lease.version)
            with bind(version=lease.version):  # every log line of the batch names its version
                return run_batch(store, definition, lease, outbox, heartbeat)
        except UpstreamError as exc:
            raise _failed(outbox, lease, exc) from None
        except SoftTimeLimitExceeded:
            raise _failed(outbox, lease, UpstreamError(
                "timeout", "fetch exceeded its time limit")) from None
        except Exception as exc:
            # A bug or a lost connection: end the batch now (not when its lease lapses), then
            # let Celery log the traceback. The message names the type only: no data leaks.
            _fail_anyhow(store, outbox, lease, UpstreamError("internal", type(exc).__name__))
            raise


def run_batch(store: Store, definition: StreamDefinition, lease: BatchLease,
              outbox: Outbox, heartbeat: Heartbeat) -> dict[str, Any]:
    """Send every page of the upstream, then the batch totals."""
    started = time.monotonic()
    steps = BatchSource.start(store, definition, lease)  # full or incremental, details
    pager = Pager(steps.source, rate_limits=store.rate_limits, tokens=store.oauth_tokens,
                  stream=lease.stream, allowed_hosts=current_app.config["ALLOWED_SOURCE_HOSTS"],
                  secret_prefix=current_app.config["SECRET_ENV_PREFIX"])
    steps.attach(pager)
    context = BatchContext(stream=lease.stream, version=lease.version, fetched_at=now_iso(),
                           source_url=definition.source.url)
    chain = build_chain(definition,
                        custom_prefixes=current_app.config["CUSTOM_MIDDLEWARE_PREFIXES"])
    if steps.full:  # the pages stage its change set (an incremental batch is merged)
        outbox.keyer = Keyer.for_batch(store, lease.stream, definition.key,
                                       chain.context_fields)
    schema = SchemaBuilder()
    pages = records = 0
    with ReadAhead(pager, _read_ahead(steps)) as upstream_pages:
        for page in upstream_pages:
            if heartbeat.lost.is_set():
                raise UpstreamError("lock_lost", "the batch lost its lease (cancelled or "
                                    "lapsed)", page=page.number)
            with bind(page=page.number):
                fetched, dead = steps.prepare(page)
                kept = chain.apply(fetched, replace(context, page=page.number))
                records += _send(outbox, steps, schema, page.number, kept, dead)
            pages += 1
    # Records a middleware held back (dedupe keeping the last) go as the last pages.
    for held in chain.finish(replace(context, page=pages + 1)):
        if heartbeat.lost.is_set():
            break
        records += _send(outbox, steps, schema, pages + 1, held, [])
        pages += 1
    steps.finish()
    if heartbeat.lost.is_set():
        raise UpstreamError("lock_lost", "the batch lost its lease (cancelled or lapsed)")
    info = {"stop_reason": pager.stop_reason or "no_next",
            "fetch_seconds": round(time.monotonic() - started, 3),
            "middleware": chain.stats(), "schema": schema.result(), **steps.info()}
    outbox.complete(pages, records, info)
    log.info("batch fetched stream=%s version=%s pages=%s records=%s stop=%s",
             lease.stream, lease.version, pages, records, info["stop_reason"])
    return {"stream": lease.stream, "version": lease.version, "pages": pages,
            "records": records}


def _read_ahead(steps: BatchSource) -> int:
    """Return how many pages to read ahead: none while pages need detail requests, which
    go through the pager's session and would then run beside its page requests."""
    return 0 if steps.details is not None else current_app.config["FETCH_READ_AHEAD_PAGES"]


def _send(outbox: Outbox, steps: BatchSource, schema: SchemaBuilder, number: int,
          kept: list[Any], dead: list[str]) -> int:
    """Send one page of records (and tombstones) after the middleware; return the count."""
    schema.add(kept)
    entries = steps.entries(kept, dead, number)
    outbox.page(number, entries)
    return len(entries)


def _fail_anyhow(store: Store, outbox: Outbox, lease: BatchLease, exc: UpstreamError) -> None:
    """Fail the batch through the ingest queue; with the broker unreachable, in the store."""
    try:
        _failed(outbox, lease, exc)
    except Exception:
        # The broker is failing over: the ingest consumer cannot hear of it, and the lock
        # would keep the stream's next batches out until it expires.
        with contextlib.suppress(Exception):
            store.writer.finish(lease.stream, lease.version, "failed", exc.to_dict())
            store.locks.release(lease)


def _failed(outbox: Outbox, lease: BatchLease, exc: UpstreamError) -> BatchFailed:
    """End the batch as failed; return the exception that tells Celery (and Flower) so."""
    error = exc.to_dict()
    outbox.fail(error)
    log.warning("batch failed stream=%s version=%s kind=%s page=%s",
                lease.stream, lease.version, exc.kind, exc.page,
                extra={"version": lease.version, "page": exc.page, "kind": exc.kind})
    return BatchFailed(f"batch {lease.version} of {lease.stream} failed: {exc.kind}: "
                       f"{exc.message}")
