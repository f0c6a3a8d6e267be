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
`pack`). A page larger than one message should carry (`PAGE_PART_RECORDS` records or
about `PAGE_PART_BYTES` of JSON) travels as several messages of the same page number,
each one part (``"part": k, "parts": n`` in `entries`); the store counts the page once
all its parts are in. A keyed page (a `Keyer`: every full batch the fetch sends) also
carries each record's key and digest (``"keys"``, ``"digests"``, ``"keying"``), so the
store stages the change set as it stores the page (`app.store.pagediff`).
`info` and `error` are flat JSON objects.
Messages may be delivered out of order and more than once; the store makes each step
idempotent. `Outbox` is the worker's side of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from celery import Celery

from app.exceptions import UpstreamError, out_of_memory
from app.extensions import Store, get_store
from app.store.changesets import keyed_digest
from app.store.digests import bucket_hash
from app.store.locks import BatchLease
from app.store.pagediff import UNKEYED, keying
from config import defaults, names

Entries = Sequence[tuple[float, str]]


@dataclass(frozen=True)
class Keyer:
    """Keys and digests a page's records as the settle step would: the stream's key
    path, and the fields the middleware set from the batch context left out; `plan` is
    (base version, its digest buckets, the batch's) from `PageDiffs.plan`."""

    key_path: str
    plan: tuple[int, int, int]
    ignore: frozenset[str] = frozenset()

    @classmethod
    def for_batch(cls, store: Store, stream: str, key_path: str,
                  ignore: frozenset[str] = frozenset()) -> Keyer | None:
        """Return the keyer of a new batch of `stream`, or None when its base has no
        bucketed digests (the settle step then diffs the whole batch)."""
        plan = store.page_diffs.plan(stream)
        return None if plan is None else cls(key_path, plan, ignore)

    def keyed(self, entries: Entries) -> dict[str, Any]:
        """Return the fields a keyed page adds to its packed form."""
        keys, digests, hashes = [], [], []
        for _, member in entries:
            key, digest = keyed_digest(member, self.key_path, self.ignore)
            keys.append(UNKEYED if key is None else key)
            digests.append(digest)
            hashes.append("0" if key is None else bucket_hash(key))
        base, base_buckets, buckets = self.plan
        return {"keys": "\n".join(keys), "digests": " ".join(digests),
                "hashes": " ".join(hashes),
                "keying": keying(self.key_path, self.ignore), "base": base,
                "buckets": buckets, "base_buckets": base_buckets}


def pack(entries: Entries, part: tuple[int, int] = (1, 1), keyer: Keyer | None = None
         ) -> dict[str, Any]:
    """Return a page's (score, member) entries as one packed page (see above)."""
    packed = {"members": "\n".join(member for _, member in entries),
              "scores": " ".join([repr(float(score)) for score, _ in entries]),
              "count": len(entries), "part": part[0], "parts": part[1]}
    return packed if keyer is None else {**packed, **keyer.keyed(entries)}


def unpack(entries: dict[str, Any]) -> tuple[str, str, int]:
    """Return (members, scores, count) of a packed page."""
    return str(entries["members"]), str(entries["scores"]), int(entries["count"])


def keyed_of(entries: dict[str, Any]) -> tuple[str, ...]:
    """Return (keys, digests, hashes, keying, base, buckets, base buckets) of a packed
    page: empty strings and zeros if it is not keyed."""
    return (str(entries.get("keys", "")), str(entries.get("digests", "")),
            str(entries.get("hashes", "")),
            str(entries.get("keying", "")), str(int(entries.get("base", 0))),
            str(int(entries.get("buckets", 0))), str(int(entries.get("base_buckets", 0))))


def part_of(entries: dict[str, Any]) -> tuple[int, int]:
    """Return (part, parts) of a packed page: (1, 1) for a page sent whole."""
    return int(entries.get("part", 1)), int(entries.get("parts", 1))


def split(entries: Entries, max_records: int = defaults.PAGE_PART_RECORDS,
          max_bytes: int = defaults.PAGE_PART_BYTES) -> list[Entries]:
    """Cut a page's entries into parts of at most `max_records` records and `max_bytes`
    characters of JSON (a record longer than that is a part of its own)."""
    parts: list[Entries] = []
    start = size = 0
    for index, (_, member) in enumerate(entries):
        if index > start and (index - start >= max_records or size + len(member) > max_bytes):
            parts.append(entries[start:index])
            start, size = index, 0
        size += len(member) + 1
    parts.append(entries[start:])
    return parts


class Outbox:
    """Sends one batch's messages to the ingest queue."""

    def __init__(self, celery_app: Celery, lease: BatchLease, keyer: Keyer | None = None
                 ) -> None:
        self.celery_app = celery_app
        self.lease = lease
        self.keyer = keyer

    def _send(self, name: str, *args: Any) -> None:
        lease = self.lease
        try:
            self.celery_app.send_task(
                name, args=[lease.stream, lease.version, lease.token, *args],
                queue=names.INGEST_QUEUE)
        except Exception as exc:
            if not out_of_memory(exc):
                raise
            # While Redis refuses writes no message can carry news of the batch: end it
            # here (freeing what it staged) rather than hold the stream until its lock goes.
            get_store().writer.fail_full(lease)
            raise UpstreamError("store_full", "Redis refused a message to the ingest queue: "
                                "it reached its maxmemory") from None

    def begin(self) -> None:
        self._send(names.INGEST_BEGIN)

    def page(self, number: int, entries: Entries) -> None:
        parts = split(entries)
        for index, part in enumerate(parts, start=1):
            self._send(names.INGEST_PAGE, number, pack(part, (index, len(parts)),
                                                       self.keyer))

    def complete(self, pages: int, records: int, info: dict[str, Any]) -> None:
        self._send(names.INGEST_COMPLETE, pages, records, info)

    def fail(self, error: dict[str, Any]) -> None:
        try:
            self._send(names.INGEST_FAIL, error)
        except UpstreamError as exc:
            if exc.kind != "store_full":  # else the batch already ended, failed
                raise
