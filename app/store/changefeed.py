"""Reads of the change feed: the change sets of several versions folded into one.

Reads each published version's change set (`StreamKeys.changes`, see `changesets`) and
its metadata (fields ``previous`` and ``changes``). The versions after
`since` are found by walking ``previous`` back from the newest; a page reads every one of
their change sets in step by key (ZRANGEBYLEX), so reading costs O(changes), not O(batch).
Per key, the first change tells whether the record existed at `since` and the last one
whether it exists now: added then removed is absent, removed then added is updated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from redis import Redis

from app.exceptions import ChangesExpired
from app.store.changesets import AFTER_KEY, SEP
from app.store.cursors import ChangeCursor
from app.store.keys import StreamKeys

MAX_CHAIN = 10_000


@dataclass(frozen=True)
class ChangePage:
    """One page of a folded change set: records and keys as raw JSON strings."""

    since: int
    to: int
    added: list[str]
    updated: list[str]
    removed: list[str]
    next_cursor: str | None


def _gone(stream: str, since: int, why: str) -> ChangesExpired:
    return ChangesExpired(f"changes of {stream!r} since version {since} are no longer kept "
                          f"({why}); do a full reload from /data and continue from its "
                          "version", details={"stream": stream, "since": since, "reason": why})


class ChangeFeed:
    """Answers "what changed since version V" for one stream."""

    def __init__(self, connection: Redis, prefix: str) -> None:
        self.connection = connection
        self.prefix = prefix

    def chain(self, stream: str, since: int, to: int) -> list[int]:
        """Return the published versions after `since` up to `to`, oldest first."""
        keys = StreamKeys(self.prefix, stream)
        versions: list[int] = []
        version = to
        for _ in range(MAX_CHAIN):
            if version <= since:
                break
            status, previous, counts = self.connection.hmget(
                keys.batch(version), "status", "previous", "changes")
            if status != "complete" or previous is None:
                raise _gone(stream, since, f"version {version} has left the history")
            if counts is None or orjson.loads(counts).get("from") != int(previous):
                raise _gone(stream, since, f"version {version} has no change set")
            versions.append(version)
            version = int(previous)
        self._check_kept(stream, since, versions)
        return versions[::-1]

    def _check_kept(self, stream: str, since: int, versions: list[int]) -> None:
        keys = StreamKeys(self.prefix, stream)
        with self.connection.pipeline(transaction=False) as pipe:
            for version in versions:
                pipe.hget(keys.batch(version), "changes")
                pipe.exists(keys.changes(version))
            replies = pipe.execute()
        for version, counts, exists in zip(versions, replies[::2], replies[1::2], strict=True):
            total = sum(orjson.loads(counts or "{}").get(op, 0)
                        for op in ("added", "updated", "removed"))
            if total and not exists:
                raise _gone(stream, since, f"the change set of version {version} expired")

    def read(self, stream: str, since: int, to: int, *, limit: int,
             after: str | None = None) -> ChangePage:
        """Return up to `limit` keys of the net changes after `since` up to `to`."""
        keys = StreamKeys(self.prefix, stream)
        versions = self.chain(stream, since, to)
        low = "-" if after is None else f"({after}{AFTER_KEY}"
        with self.connection.pipeline(transaction=False) as pipe:
            for version in versions:
                pipe.zrangebylex(keys.changes(version), low, "+", start=0, num=limit)
            slices: list[Any] = pipe.execute()
        full = [chunk[-1].partition(SEP)[0] for chunk in slices if len(chunk) >= limit]
        bound = min(full) if full else None
        events: dict[str, list[str]] = {}
        for chunk in slices:
            for member in chunk:
                key = member.partition(SEP)[0]
                if bound is None or key <= bound:
                    events.setdefault(key, []).append(member)
        ordered = sorted(events)
        page, more = ordered[:limit], bool(full) or len(ordered) > limit
        added, updated, removed = _fold(page, events)
        next_cursor = ChangeCursor(since, to, page[-1]).encode() if more and page else None
        return ChangePage(since, to, added, updated, removed, next_cursor)


def _fold(page: list[str], events: dict[str, list[str]]
          ) -> tuple[list[str], list[str], list[str]]:
    """Fold each key's changes, oldest first, into added, updated and removed."""
    added: list[str] = []
    updated: list[str] = []
    removed: list[str] = []
    for key in page:
        first, last = events[key][0], events[key][-1]
        existed = first.split(SEP, 2)[1] != "a"
        _, op, record = last.split(SEP, 2)
        if op == "r":
            if existed:
                removed.append(key)
        elif existed:
            updated.append(record)
        else:
            added.append(record)
    return added, updated, removed
