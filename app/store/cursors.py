"""Cursors: where a paging reader stands, written by the store and handed back by clients.

A cursor is a small JSON object, base64url without padding, so it travels in a query
string untouched. There are four kinds, one codec (`encode`, `decode`):

    records page  {"v": version, "o": offset[, "lo": low, "hi": high, "d": descending]}
    change feed   {"f": since, "t": to, "k": last key answered}
    stream list   {"n": last stream name answered}
    batch list    {"b": last version answered (pages go newest first)}

The first two pin what they read (a version; a range of versions), so paging never mixes
two batches; the lists are live and resume after the last item answered. A cursor the
store did not write raises `InvalidCursor`.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from math import isfinite
from typing import Any

import orjson

from app.exceptions import InvalidCursor

# Longest cursor accepted, in characters: a real one is well under 200.
MAX_LENGTH = 1024
# Largest version or offset a cursor may carry (as the `version` query parameter): 2^53.
MAX_INTEGER = 2**53
_DECODE_ERRORS = (binascii.Error, ValueError, KeyError, TypeError, AttributeError,
                  orjson.JSONDecodeError)


def encode(body: dict[str, Any]) -> str:
    """Return `body` as a cursor string."""
    return base64.urlsafe_b64encode(orjson.dumps(body)).decode().rstrip("=")


def decode(text: str) -> dict[str, Any]:
    """Return the JSON object of a cursor string, or raise InvalidCursor."""
    try:
        if len(text) > MAX_LENGTH:
            raise ValueError("too long")
        body = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        if not isinstance(body, dict):
            raise TypeError("not an object")
        return body
    except _DECODE_ERRORS:
        raise _invalid() from None


def _invalid() -> InvalidCursor:
    return InvalidCursor("cursor is not valid; use next_cursor from a previous page",
                         details={"field": "cursor"})


@dataclass(frozen=True)
class Window:
    """Which records of a version, in which order: a score range (inclusive) and a way."""

    low: float | None = None
    high: float | None = None
    descending: bool = False


EVERYTHING = Window()  # every record, in ascending order


@dataclass(frozen=True)
class Cursor:
    """Where a reader of records stands: a pinned version, an offset and the window read."""

    version: int
    offset: int
    window: Window = EVERYTHING

    def encode(self) -> str:
        body: dict[str, object] = {"v": self.version, "o": self.offset}
        if self.window != EVERYTHING:
            body.update(lo=self.window.low, hi=self.window.high, d=self.window.descending)
        return encode(body)

    @classmethod
    def decode(cls, text: str) -> Cursor:
        body = decode(text)
        try:
            window = Window(_bound(body.get("lo")), _bound(body.get("hi")), bool(body.get("d")))
            return cls(version=_whole(body["v"], 1), offset=_whole(body["o"], 0), window=window)
        except _DECODE_ERRORS:
            raise _invalid() from None


@dataclass(frozen=True)
class ChangeCursor:
    """Where a change-feed reader stands: the pinned range and the last key answered."""

    since: int
    to: int
    after: str

    def encode(self) -> str:
        return encode({"f": self.since, "t": self.to, "k": self.after})

    @classmethod
    def decode(cls, text: str) -> ChangeCursor:
        body = decode(text)
        try:
            cursor = cls(since=_whole(body["f"], 0), to=_whole(body["t"], 1),
                         after=str(body["k"]))
        except _DECODE_ERRORS:
            raise _invalid() from None
        if cursor.to <= cursor.since or not cursor.after:
            raise _invalid()
        return cursor


def _whole(value: Any, low: int) -> int:
    """Return a version or offset a cursor carries: an integer in [low, MAX_INTEGER]."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= MAX_INTEGER:
        raise ValueError("not a version or offset")
    return value


@dataclass(frozen=True)
class StreamsCursor:
    """Where a reader of the stream list stands: the last name answered."""

    after: str

    def encode(self) -> str:
        return encode({"n": self.after})

    @classmethod
    def decode(cls, text: str) -> StreamsCursor:
        after = decode(text).get("n")
        if not isinstance(after, str) or not after:
            raise _invalid()
        return cls(after)


@dataclass(frozen=True)
class BatchesCursor:
    """Where a reader of a batch history stands: the last (oldest) version answered."""

    before: int

    def encode(self) -> str:
        return encode({"b": self.before})

    @classmethod
    def decode(cls, text: str) -> BatchesCursor:
        before = decode(text).get("b")
        if isinstance(before, bool) or not isinstance(before, int) or before < 1:
            raise _invalid()
        return cls(before)


def _bound(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not isfinite(value):
        raise ValueError("bound")
    return float(value)
