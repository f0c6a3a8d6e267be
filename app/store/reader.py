"""Reads of published versions and batch history.

Reads the pointer to the current version, each version's records (a sorted set) and
metadata (a hash), and the history index; the layout is in `keys`. A reader resolves the
version once and then reads only that version's immutable zset; the cursor carries the
version, so paging never mixes two batches. A `Window` (score range and direction) becomes
a range of ranks once per page (ZCOUNT), so a page is O(log N + limit) however deep it
lies, and the cursor carries the window too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from redis import Redis

from app.exceptions import (
    BatchNotFound,
    BatchNotReadable,
    NoCompleteBatch,
    StreamNotFound,
    VersionExpired,
)
from app.store import scripts
from app.store.cursors import EVERYTHING, BatchesCursor, Cursor, Window
from app.store.keys import StreamKeys
from app.store.locks import BatchLease
from app.store.served import ServedVersions
from config import defaults

_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


@dataclass(frozen=True)
class RecordPage:
    """One page of a version: the records as raw JSON strings and where to go next."""

    version: int
    records: list[str]
    next_cursor: str | None


@dataclass(frozen=True)
class BatchPage:
    """One page of a stream's batch history, newest first, and where to go next."""

    batches: list[dict[str, Any]]
    next_cursor: str | None


def decode_batch(raw: Any) -> dict[str, Any]:
    """Turn a batch metadata hash into the public batch shape."""
    return {key: _value(value) for key, value in raw.items() if key != "token"}


def _value(text: str) -> Any:
    """Decode a metadata field: JSON objects and numbers back to their types."""
    if text[:1] in ("{", "[") or _NUMBER.match(text):
        return orjson.loads(text)
    return text


def _expired(stream: str, version: int) -> VersionExpired:
    return VersionExpired(f"version {version} of {stream!r} has expired; restart from the current "
                "version", details={"stream": stream, "version": version})


class Reader:
    """Reads one stream's published data and batch history."""

    def __init__(self, connection: Redis, prefix: str) -> None:
        self.connection = connection
        self.prefix = prefix
        self._read_page = connection.register_script(scripts.READ_PAGE)
        # The current version each stream had at this process's last read: a guess the
        # read script verifies, never an answer by itself.
        self._last_current: dict[str, int] = {}
        # Never an older current version than this process served (a failover).
        self.served = ServedVersions(connection, prefix)

    def current_version(self, stream: str) -> int | None:
        raw = self.connection.get(StreamKeys(self.prefix, stream).current)
        return int(raw) if raw else None

    def read(self, stream: str, *, limit: int, cursor: Cursor | None = None,
             version: int | None = None, window: Window = EVERYTHING) -> RecordPage:
        """Return `limit` records of the cursor's, the given or the current version."""
        offset = 0
        if cursor is not None:
            version, offset, window = cursor.version, cursor.offset, cursor.window
        if window.low is None and window.high is None:
            return self._read_ranks(stream, version, offset, limit, window, cursor is not None)
        version = self.resolve(stream, version)
        try:
            start, stop = self.span(stream, version, window)
        except BatchNotFound:
            if cursor is None:
                raise
            raise _expired(stream, version) from None  # the history dropped the version
        members = self._slice(stream, version, window, (start, stop), offset, limit)
        if len(members) < min(limit, stop - start - offset):
            raise _expired(stream, version)  # it expired between the check and the read
        more = stop - start > offset + limit
        next_cursor = Cursor(version, offset + limit, window).encode() if more else None
        return RecordPage(version=version, records=members, next_cursor=next_cursor)

    def _read_ranks(self, stream: str, version: int | None, offset: int, limit: int,
                    window: Window, pinned: bool) -> RecordPage:
        """Read a page by rank in one round trip (the hot path of /data).

        Without a version, the reader sends the current version it saw last; the script
        checks it against the pointer atomically and answers "moved" when a newer batch
        was published since, and the read is retried once with the real one. Existence of
        the stream is a key lookup in the same step; the definition is not parsed.
        """
        keys = StreamKeys(self.prefix, stream)
        guessed = version is None
        target = version if version is not None else self._last_current.get(stream, 0)
        for _ in range(3):
            reply: Any = self._read_page(
                keys=[keys.definition, keys.batch(target), keys.records(target), keys.current],
                args=[target, offset, offset + limit - 1, int(window.descending), int(guessed)])
            if reply[0] != "moved":
                break
            if not reply[2]:
                raise StreamNotFound(stream)
            if not reply[1]:
                raise NoCompleteBatch(stream)
            target = self._last_current[stream] = int(reply[1])
        else:
            raise VersionExpired(f"{stream!r} kept publishing during the read; retry",
                                 details={"stream": stream})
        defined, status, count, total, members = reply
        if not defined:
            raise StreamNotFound(stream)
        if not status and pinned:
            raise _expired(stream, target)  # the history dropped the version
        # Redis never keeps an empty sorted set: a ZCARD of 0 means the records are gone.
        self._check_readable(stream, target, status or None, count, total > 0)
        if guessed:
            self.served.check(stream, target)
        more = int(total) > offset + limit
        next_cursor = Cursor(target, offset + limit, window).encode() if more else None
        return RecordPage(version=target, records=list(members), next_cursor=next_cursor)

    def export(self, stream: str, version: int, window: Window, chunk: int
               ) -> Iterator[list[str]]:
        """Yield a whole window of a readable version, `chunk` records at a time."""
        start, stop = self.span(stream, version, window)
        for offset in range(0, stop - start, chunk):
            members = self._slice(stream, version, window, (start, stop), offset, chunk)
            if len(members) < min(chunk, stop - start - offset):
                raise VersionExpired(f"version {version} of {stream!r} expired during the "
                                     "export", details={"stream": stream, "version": version})
            yield members

    def resolve(self, stream: str, version: int | None) -> int:
        """Return `version`, or the current version (NoCompleteBatch if none)."""
        if version is None:
            version = self.current_version(stream)
            if version is None:
                raise NoCompleteBatch(stream)
            self.served.check(stream, version)
        return version

    def span(self, stream: str, version: int, window: Window) -> tuple[int, int]:
        """Check the version is readable; return the ranks [start, stop) of the window."""
        keys = StreamKeys(self.prefix, stream)
        name = keys.records(version)
        with self.connection.pipeline(transaction=False) as pipe:
            pipe.hmget(keys.batch(version), "status", "records")
            pipe.exists(name)
            pipe.zcard(name)
            pipe.zcount(name, "-inf", f"({window.low!r}" if window.low is not None else "-inf")
            pipe.zcount(name, "-inf", repr(window.high) if window.high is not None else "+inf")
            (status, count), exists, _, below, upto = pipe.execute()
        self._check_readable(stream, version, status, count, bool(exists))
        if window.low is None:
            below = 0
        return int(below), max(int(below), int(upto))

    def _slice(self, stream: str, version: int, window: Window, span: tuple[int, int],
               offset: int, limit: int) -> list[str]:
        """Return `limit` members from `offset` into the window, in the window's order."""
        start, stop = span
        name = StreamKeys(self.prefix, stream).records(version)
        if not window.descending:
            first, last = start + offset, min(start + offset + limit, stop) - 1
        else:
            first, last = max(stop - offset - limit, start), stop - 1 - offset
        if first > last:
            return []
        members: Any = self.connection.zrange(name, first, last)
        return list(members[::-1] if window.descending else members)

    def _check_readable(self, stream: str, version: int, status: str | None,
                        count: str | None, exists: bool) -> None:
        if status is None:
            raise BatchNotFound(stream, version)
        if status != "complete":
            raise BatchNotReadable(f"batch {version} of {stream!r} is {status}, not complete",
                                   details={"stream": stream, "version": version,
                                            "status": status})
        if not exists and int(count or 0) > 0:
            raise _expired(stream, version)

    def batch(self, stream: str, version: int) -> dict[str, Any]:
        raw = self.connection.hgetall(StreamKeys(self.prefix, stream).batch(version))
        if not raw:
            raise BatchNotFound(stream, version)
        return decode_batch(raw)

    def batch_or_none(self, stream: str, version: int) -> dict[str, Any] | None:
        raw = self.connection.hgetall(StreamKeys(self.prefix, stream).batch(version))
        return decode_batch(raw) if raw else None

    def current_versions(self, streams: list[str]) -> dict[str, int | None]:
        """Return the current version of each stream (one round trip)."""
        with self.connection.pipeline(transaction=False) as pipe:
            for stream in streams:
                pipe.get(StreamKeys(self.prefix, stream).current)
            replies = pipe.execute()
        return {stream: int(raw) if raw else None
                for stream, raw in zip(streams, replies, strict=True)}

    def batches(self, stream: str, limit: int = 50) -> list[dict[str, Any]]:
        """Return the newest `limit` batches, newest first."""
        keys = StreamKeys(self.prefix, stream)
        versions: Any = self.connection.zrevrange(keys.batches, 0, limit - 1)
        return [decode_batch(row) for row in self._rows(keys, versions) if row]

    def _rows(self, keys: StreamKeys, versions: list[Any]) -> list[Any]:
        """Return the metadata hash of each version (empty when gone), one round trip."""
        with self.connection.pipeline(transaction=False) as pipe:
            for version in versions:
                pipe.hgetall(keys.batch(int(version)))
            return list(pipe.execute())

    def batch_page(self, stream: str, *, limit: int, before: int | None = None,
                   status: str | None = None, scan: int = defaults.LIST_SCAN_LIMIT) -> BatchPage:
        """Return up to `limit` batches older than `before` (with `status`), newest first.

        At most `scan` batches are examined per page, so a rare status costs a bounded
        read; a page may then hold fewer batches and still have a `next_cursor`.
        """
        keys = StreamKeys(self.prefix, stream)
        found: list[dict[str, Any]] = []
        last, scanned = before, 0
        while len(found) < limit and scanned < scan:
            high = "+inf" if last is None else f"({last}"
            want = limit - len(found) if status is None else min(limit, scan - scanned)
            versions: Any = self.connection.zrevrangebyscore(keys.batches, high, "-inf",
                                                             start=0, num=want)
            if not versions:
                return BatchPage(found, None)
            for version, row in zip(versions, self._rows(keys, versions), strict=True):
                scanned, last = scanned + 1, int(version)
                if row and (status is None or row.get("status") == status):
                    found.append(decode_batch(row))
                if len(found) == limit:
                    break
        more = last is not None and self.connection.zcount(keys.batches, "-inf", f"({last}")
        return BatchPage(found, BatchesCursor(last).encode() if more and last else None)

    def in_progress(self, stream: str) -> dict[str, Any] | None:
        """Return the batch in flight (the lock holder's), with its progress, or None."""
        keys = StreamKeys(self.prefix, stream)
        raw = self.connection.get(keys.lock)
        if not raw:
            return None
        version = BatchLease.parse(stream, raw).version
        row = self.connection.hgetall(keys.batch(version))
        batch = decode_batch(row) if row else {"version": version, "status": "running"}
        batch.setdefault("pages_received", 0)
        batch.setdefault("records_received", 0)
        return batch
