"""The internal protocol: Celery messages between the worker and data-streams.

Commands reach the worker through RedBeat entries (see `schedule`): beat sends
``ds.fetch.stream(stream)`` to the ``fetch`` queue. Fetched data comes back on the
``ingest`` queue, consumed by data-streams' ingest consumer (`tasks.ingest`); the worker
never writes the batch store itself. One batch is, in order of sending:

    ds.ingest.begin(stream, version, token)
    ds.ingest.page(stream, version, token, page, entries)     one per page, any order
    ds.ingest.complete(stream, version, token, pages, records, info)
or  ds.ingest.fail(stream, version, token, error)

`entries` is a packed page, ``{"members": "<record_json>\\n<record_json>...",
"scores": "<score> <score>...", "count": n}``: the records as canonical JSON (which never
holds a raw newline) joined by newlines and their scores joined by spaces, so neither side
encodes or decodes one JSON value per record and the store receives two strings (see
`pack`). `info` and `error` are flat JSON objects.
Messages may be delivered out of order and more than once; the store makes each step
idempotent. `Outbox` is the worker's side of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from celery import Celery

from app.store.locks import BatchLease
from config import names


def pack(entries: Sequence[tuple[float, str]]) -> dict[str, Any]:
    """Return a page's (score, member) entries as one packed page (see above)."""
    return {"members": "\n".join(member for _, member in entries),
            "scores": " ".join([repr(float(score)) for score, _ in entries]),
            "count": len(entries)}


def unpack(entries: dict[str, Any]) -> tuple[str, str, int]:
    """Return (members, scores, count) of a packed page."""
    return str(entries["members"]), str(entries["scores"]), int(entries["count"])


class Outbox:
    """Sends one batch's messages to the ingest queue."""

    def __init__(self, celery_app: Celery, lease: BatchLease) -> None:
        self.celery_app = celery_app
        self.lease = lease

    def _send(self, name: str, *args: Any) -> None:
        lease = self.lease
        self.celery_app.send_task(name, args=[lease.stream, lease.version, lease.token, *args],
                                  queue=names.INGEST_QUEUE)

    def begin(self) -> None:
        self._send(names.INGEST_BEGIN)

    def page(self, number: int, entries: Sequence[tuple[float, str]]) -> None:
        self._send(names.INGEST_PAGE, number, pack(entries))

    def complete(self, pages: int, records: int, info: dict[str, Any]) -> None:
        self._send(names.INGEST_COMPLETE, pages, records, info)

    def fail(self, error: dict[str, Any]) -> None:
        self._send(names.INGEST_FAIL, error)
