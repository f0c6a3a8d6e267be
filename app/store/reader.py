"""Reads of published versions and batch history.

Structures (see `keys`): the pointer ``P:{s}:current``, each version's records zset
``P:{s}:b:<v>:rec`` and metadata hash ``P:{s}:b:<v>``, the history index ``P:{s}:batches``.
A reader resolves the version once and then reads only that version's immutable zset;
the cursor carries the version, so paging never mixes two batches.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any

import orjson
from redis import Redis

from app.exceptions import BadRequest, BatchNotFound, Gone, NoCompleteBatch
from app.store.keys import StreamKeys

_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


@dataclass(frozen=True)
class Cursor:
    """Where a paging reader stands: a pinned version and an offset into it."""

    version: int
    offset: int

    def encode(self) -> str:
        raw = orjson.dumps({"v": self.version, "o": self.offset})
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            body = orjson.loads(raw)
            cursor = cls(version=int(body["v"]), offset=int(body["o"]))
        except (binascii.Error, ValueError, KeyError, TypeError, orjson.JSONDecodeError):
            raise BadRequest("cursor is not valid; use next_cursor from a previous page",
                             details={"field": "cursor"}) from None
        if cursor.version < 1 or cursor.offset < 0:
            raise BadRequest("cursor is not valid", details={"field": "cursor"})
        return cursor


@dataclass(frozen=True)
class RecordPage:
    """One page of a version: the records as raw JSON strings and where to go next."""

    version: int
    records: list[str]
    next_cursor: str | None


def decode_batch(raw: Any) -> dict[str, Any]:
    """Turn a batch metadata hash into the public batch shape."""
    return {key: _value(value) for key, value in raw.items() if key != "token"}


def _value(text: str) -> Any:
    """Decode a metadata field: JSON objects and numbers back to their types."""
    if text[:1] in ("{", "[") or _NUMBER.match(text):
        return orjson.loads(text)
    return text


class Reader:
    """Reads one stream's published data and batch history."""

    def __init__(self, connection: Redis, prefix: str) -> None:
        self.connection = connection
        self.prefix = prefix

    def current_version(self, stream: str) -> int | None:
        raw = self.connection.get(StreamKeys(self.prefix, stream).current)
        return int(raw) if raw else None

    def read(self, stream: str, *, limit: int, cursor: Cursor | None = None,
             version: int | None = None) -> RecordPage:
        """Return `limit` records of the cursor's, the given or the current version."""
        keys = StreamKeys(self.prefix, stream)
        offset = 0
        if cursor is not None:
            version, offset = cursor.version, cursor.offset
        elif version is None:
            version = self.current_version(stream)
            if version is None:
                raise NoCompleteBatch(stream)
        with self.connection.pipeline(transaction=False) as pipe:
            pipe.hmget(keys.batch(version), "status", "records")
            pipe.exists(keys.records(version))
            pipe.zrange(keys.records(version), offset, offset + limit)
            (status, count), exists, members = pipe.execute()
        self._check_readable(stream, version, status, count, bool(exists))
        more = len(members) > limit
        members = members[:limit]
        next_cursor = Cursor(version, offset + limit).encode() if more else None
        return RecordPage(version=version, records=members, next_cursor=next_cursor)

    def _check_readable(self, stream: str, version: int, status: str | None,
                        count: str | None, exists: bool) -> None:
        if status is None:
            raise BatchNotFound(stream, version)
        if status != "complete":
            raise BadRequest(f"batch {version} of {stream!r} is {status}, not complete",
                             details={"stream": stream, "version": version, "status": status})
        if not exists and int(count or 0) > 0:
            raise Gone(f"version {version} of {stream!r} has expired; restart from the "
                       "current version", details={"stream": stream, "version": version})

    def batch(self, stream: str, version: int) -> dict[str, Any]:
        raw = self.connection.hgetall(StreamKeys(self.prefix, stream).batch(version))
        if not raw:
            raise BatchNotFound(stream, version)
        return decode_batch(raw)

    def batch_or_none(self, stream: str, version: int) -> dict[str, Any] | None:
        raw = self.connection.hgetall(StreamKeys(self.prefix, stream).batch(version))
        return decode_batch(raw) if raw else None

    def batches(self, stream: str, limit: int = 50) -> list[dict[str, Any]]:
        """Return the newest `limit` batches, newest first."""
        keys = StreamKeys(self.prefix, stream)
        versions: Any = self.connection.zrevrange(keys.batches, 0, limit - 1)
        with self.connection.pipeline(transaction=False) as pipe:
            for version in versions:
                pipe.hgetall(keys.batch(int(version)))
            rows = pipe.execute()
        return [decode_batch(row) for row in rows if row]

    def in_progress(self, stream: str) -> dict[str, Any] | None:
        """Return the batch in flight (the lock holder's), with its progress, or None."""
        keys = StreamKeys(self.prefix, stream)
        raw = self.connection.get(keys.lock)
        if not raw:
            return None
        version = int(str(raw).rpartition(":")[2])
        row = self.connection.hgetall(keys.batch(version))
        batch = decode_batch(row) if row else {"version": version, "status": "running"}
        batch.setdefault("pages_received", 0)
        batch.setdefault("records_received", 0)
        return batch
