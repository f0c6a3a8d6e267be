"""The one way tests put batches into the store: the fetch task's path, message by message.

A `Batch` takes the stream's lock and next version as the fetch task does
(`StreamLocks.acquire_once` with the receipt of a fetch message), then sends its messages
through the worker's real `tasks.protocol.Outbox`. In integration and fault tests the
Outbox is given the real Celery app, so the messages reach the real ingest process. Where
no worker runs (unit tests, benchmarks), `InProcess` stands in for Celery's `send_task`:
each message runs the task registered under its name (`tasks.ingest`) at once, in this
process. `Seeder` does that for one Flask app:

    seed = Seeder(app)
    version = seed.publish("orders", [{"id": 1}, {"id": 2}])     # asserts it published
    batch = seed.send("orders", records, page_size=100)          # any outcome
    batch = seed.batch("orders"); batch.page([...]); ...         # step by step
"""

from __future__ import annotations

import uuid
from typing import Any

from celery import Celery
from flask import Flask
from redis import Redis

import tasks.ingest  # noqa: F401 (registers the ingest tasks InProcess runs)
from app.extensions import Store
from app.records import to_entries
from app.store.keys import StreamKeys
from app.store.locks import BatchLease, StreamLocks
from tasks.protocol import Keyer, Outbox


class InProcess:
    """Celery's `send_task` for an Outbox: runs each message's task now, in this process."""

    def __init__(self, celery_app: Celery) -> None:
        self.celery_app = celery_app
        self.sent: list[tuple[str, list[Any]]] = []

    def send_task(self, name: str, args: list[Any], queue: str) -> None:
        self.sent.append((name, list(args)))
        self.celery_app.tasks[name](*args)


class Batch:
    """One batch of one stream, begun as the fetch task begins it."""

    def __init__(self, locks: StreamLocks, celery_app: Celery | InProcess, stream: str,
                 order_by: str | None = None, receipt: str | None = None,
                 keyer: Keyer | None = None) -> None:
        lease = locks.acquire_once(stream, receipt or str(uuid.uuid4()))
        assert isinstance(lease, BatchLease), f"no batch of {stream}: {lease}"
        self.lease = lease
        self.outbox = Outbox(celery_app, lease, keyer)
        self.order_by = order_by
        self.sizes: dict[int, int] = {}
        self.outbox.begin()

    @property
    def version(self) -> int:
        return self.lease.version

    def page(self, records: list[Any], number: int | None = None) -> None:
        """Send one page of records: the next one, or page `number` (again)."""
        number = number or len(self.sizes) + 1
        self.outbox.page(number, to_entries(records, number, self.order_by))
        self.sizes[number] = len(records)

    def complete(self, info: dict[str, Any] | None = None, *, pages: int | None = None,
                 records: int | None = None) -> None:
        """Announce the totals: those of the pages sent unless given."""
        self.outbox.complete(len(self.sizes) if pages is None else pages,
                             sum(self.sizes.values()) if records is None else records,
                             info or {})

    def fail(self, kind: str = "http_status", message: str = "upstream answered 503") -> None:
        """End the batch as failed, as a fetch that met an upstream error does."""
        self.outbox.fail({"kind": kind, "message": message})


class Seeder:
    """Sends batches to one app's ingest tasks, in process."""

    def __init__(self, app: Flask) -> None:
        self.store: Store = app.extensions["store"]
        self.celery = InProcess(app.extensions["celery"])

    @property
    def sent(self) -> list[tuple[str, list[Any]]]:
        """Every message sent so far: (task name, args)."""
        return self.celery.sent

    def batch(self, stream: str, order_by: str | None = None) -> Batch:
        """Begin a batch of `stream`, its pages keyed as the fetch keys full batches."""
        definition = self.store.definitions.get(stream)
        keyer = (Keyer.for_batch(self.store, stream, definition.key)
                 if definition is not None and definition.source.incremental is None
                 else None)
        return Batch(self.store.locks, self.celery, stream, order_by, keyer=keyer)

    def send(self, stream: str, records: list[Any], *, order_by: str | None = None,
             page_size: int | None = None, info: dict[str, Any] | None = None) -> Batch:
        """Send a whole batch: `records` in pages of `page_size` (one page by default).

        As from the fetch, a batch has at least one page, which may be empty.
        """
        batch = self.batch(stream, order_by)
        size = page_size or max(1, len(records))
        for start in range(0, max(1, len(records)), size):
            batch.page(records[start:start + size])
        batch.complete(info)
        return batch

    def publish(self, stream: str, records: list[Any], **options: Any) -> int:
        """Send a whole batch, check that it was published; return its version."""
        batch = self.send(stream, records, **options)
        assert self.status(stream, batch.version) == "complete"
        assert self.store.reader.current_version(stream) == batch.version
        return batch.version

    def status(self, stream: str, version: int) -> str:
        """Return the status of batch `version` of `stream`."""
        return str(self.store.reader.batch(stream, version)["status"])


def digest_buckets(redis: Redis, keys: StreamKeys, version: int) -> list[str]:
    """Return the names of the digest buckets `version` has in Redis."""
    return [name for name in redis.scan_iter(keys.digests(version) + ":*", count=1000)
            if not name.endswith(":seen")]
