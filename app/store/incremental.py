"""Merging an incremental batch: the published version with the batch's changes applied.

An incremental batch stages only what changed (its records, and a tombstone member
``TOMBSTONE + key`` per deleted key) in its `rec`, like any batch. Once it is whole,
`merge` turns `rec` into the complete new version, in steps that never block Redis long:

1. `MERGE_BEGIN` checks every staged change is still there and sets them aside
   (`rec` -> `ups`), once;
2. the changes are read (O(changes)) and, through the record index (`recindex`), the
   base version's members of each changed key: this gives the exact change set (added,
   updated, removed; a record refetched unchanged is no change) before anything is copied;
3. `MERGE_COPY` copies the base version into `rec` server-side, `COPY_CHUNK` members per
   command; `MERGE_FIX` then removes the replaced members and adds the new ones.

Every step is idempotent and checks the batch is still running, so two consumers may
settle one batch at once. The cost is O(changes) in the client and O(N / COPY_CHUNK)
bounded commands in Redis (measured in bench/incremental.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from redis import Redis

from app.exceptions import BaseVersionGone, StoreError
from app.records import PAGE_STRIDE, order_score
from app.store import scripts
from app.store.changesets import SEP, Diff, keyed_digest
from app.store.keys import StreamKeys
from app.store.recindex import RecordIndex
from app.store.writer import Retention

# A staged member that deletes the key after it (canonical JSON never starts with "!").
TOMBSTONE = "!"
# Members copied per MERGE_COPY command: a few ms each (SLOWLOG in bench/incremental.py).
COPY_CHUNK = 2000
CHUNK = 5000


@dataclass
class Merge:
    """What merging one incremental batch found: the change set and the index's moves."""

    diff: Diff
    duplicates: int = 0
    put: dict[str, str] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.diff.added or self.diff.updated or self.diff.removed)


@dataclass
class _Plan:
    """The member-level edits of a merge: what to remove from and add to the copy."""

    remove: list[str] = field(default_factory=list)
    add: list[tuple[float, str]] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)


class Merger:
    """Builds the new version of an incremental batch from its base and its changes."""

    def __init__(self, connection: Redis, prefix: str, retention: Retention,
                 index: RecordIndex) -> None:
        self.connection = connection
        self.prefix = prefix
        self.retention = retention
        self.index = index
        self._begin = connection.register_script(scripts.MERGE_BEGIN)
        self._copy = connection.register_script(scripts.MERGE_COPY)
        self._fix = connection.register_script(scripts.MERGE_FIX)
        self._changes = connection.register_script(scripts.MERGE_CHANGES)

    def merge(self, stream: str, version: int, base: int, key_path: str,
              order_by: str | None, ignore: tuple[frozenset[str], frozenset[str]] = (
                  frozenset(), frozenset())) -> Merge | str:
        """Merge batch `version` onto `base`, or return why not: "not_running" (another
        consumer settled it), "staging_expired" (its staged changes are not all there).

        A record is changed when it differs from the base's but for the fields of
        `ignore` (this batch's, the base's: the fields middleware set from the batch
        context). With no change (`Merge.changed` false) nothing is copied.
        """
        keys = StreamKeys(self.prefix, stream)
        ttl = self.retention.staging_ttl_ms
        phase = str(self._begin(keys=[keys.batch(version), keys.records(version),
                                      keys.upserts(version), keys.pages(version)], args=[ttl]))
        if phase in ("not_running", "staging_expired"):
            return phase
        changes, merge = self._read_changes(keys.upserts(version), key_path, base)
        old = self.index.lookup(stream, base, list(changes))
        if old is None:
            self.index.build(stream, base, key_path)
            old = self.index.lookup(stream, base, list(changes))
        if old is None:
            raise BaseVersionGone(f"the record index of version {base} of {stream!r} could not be "
                           "built", details={"stream": stream, "version": base})
        def same(before: str, after: str) -> bool:
            return (keyed_digest(before, key_path, ignore[1])[1]
                    == keyed_digest(after, key_path, ignore[0])[1])

        plan = self._plan(keys, base, changes, old, order_by, merge, same)
        if not merge.changed:
            return merge
        if not self._copy_base(keys, version, base):
            return "not_running"
        self._apply(keys, version, plan)
        return merge

    def _read_changes(self, name: str, key_path: str, base: int
                      ) -> tuple[dict[str, str | None], Merge]:
        """Return key -> new member (None: deleted), the last change of each key winning."""
        merge = Merge(Diff(base))
        changes: dict[str, str | None] = {}
        start = 0
        while True:
            members: Any = self.connection.zrange(name, start, start + CHUNK - 1)
            for member in members:
                if member.startswith(TOMBSTONE):
                    key, value = member[len(TOMBSTONE):], None
                else:
                    key, value = keyed_digest(member, key_path)[0], member
                if key is None:
                    merge.diff.unkeyed += 1
                    continue
                merge.duplicates += key in changes
                changes[key] = value
            if len(members) < CHUNK:
                return changes, merge
            start += CHUNK

    def _plan(self, keys: StreamKeys, base: int, changes: dict[str, str | None],
              old: dict[str, list[str]], order_by: str | None, merge: Merge,
              same: Callable[[str, str], bool]) -> _Plan:
        """Decide every removal, addition and change-set member; count the diff."""
        plan = _Plan()
        kept_scores = self._scores(keys.records(base), old, changes, order_by)
        appended = self._last_score(keys.records(base)) if order_by is None else 0.0
        for key, member in changes.items():
            before = old.get(key, [])
            if member is None:
                if before:
                    plan.remove += before
                    plan.changes.append(f"{key}{SEP}r{SEP}")
                    merge.removed.append(key)
                    merge.diff.removed += 1
                continue
            if len(before) == 1 and same(before[0], member):
                continue  # refetched, unchanged
            op = "u" if before else "a"
            if order_by:
                score = _order(member, order_by)
            elif before:
                score = kept_scores[key]
            else:
                appended += 1
                score = appended
            plan.remove += [one for one in before if one != member]
            plan.add.append((score, member))
            plan.changes.append(f"{key}{SEP}{op}{SEP}{member}")
            merge.put[key] = member
            merge.diff.added += op == "a"
            merge.diff.updated += op == "u"
        return plan

    def _scores(self, name: str, old: dict[str, list[str]],
                changes: dict[str, str | None], order_by: str | None) -> dict[str, float]:
        """Return the base score of each updated key: an update keeps its place."""
        wanted = [key for key, member in changes.items()
                  if member is not None and old.get(key) and order_by is None]
        scores: dict[str, float] = {}
        for start in range(0, len(wanted), CHUNK):
            chunk = wanted[start:start + CHUNK]
            found: Any = self.connection.zmscore(name, [old[key][0] for key in chunk])
            scores.update({key: float(score) if score is not None else 0.0
                           for key, score in zip(chunk, found, strict=True)})
        return scores

    def _last_score(self, name: str) -> float:
        """Return the highest score of the base version (new records go after it)."""
        last: Any = self.connection.zrange(name, -1, -1, withscores=True)
        return float(last[0][1]) if last else float(PAGE_STRIDE)

    def _copy_base(self, keys: StreamKeys, version: int, base: int) -> bool:
        """Copy the base version into `rec`; False when the batch no longer runs."""
        count = int(str(self.connection.hget(keys.batch(base), "records") or 0))
        args = [COPY_CHUNK, self.retention.staging_ttl_ms, version,
                self.retention.lock_ttl_ms, count]
        for _ in range(count // COPY_CHUNK + 3):
            position = int(self._copy(keys=[keys.batch(version), keys.records(base),
                                             keys.records(version), keys.lock], args=args))
            if position == -1:
                return False
            if position == -3:
                raise BaseVersionGone(f"version {base} of {keys.stream!r} expired during the merge",
                               details={"stream": keys.stream, "version": base})
            if position == -2:
                return True
        raise StoreError(f"the copy of version {base} did not end", details={"version": base})

    def _apply(self, keys: StreamKeys, version: int, plan: _Plan) -> None:
        """Remove the replaced members, add the new ones, stage the change set."""
        ttl = self.retention.staging_ttl_ms
        meta, rec = keys.batch(version), keys.records(version)
        removals = [plan.remove[i:i + CHUNK] for i in range(0, len(plan.remove), CHUNK)]
        additions = [plan.add[i:i + CHUNK] for i in range(0, len(plan.add), CHUNK)]
        for chunk in removals:
            self._fix(keys=[meta, rec], args=[ttl, len(chunk), *chunk])
        for pairs in additions:
            self._fix(keys=[meta, rec], args=[ttl, 0, *[x for pair in pairs for x in pair]])
        for start in range(0, len(plan.changes), CHUNK):
            self._changes(keys=[meta, keys.changes(version)],
                          args=[ttl, *plan.changes[start:start + CHUNK]])

    def set_aside(self, stream: str, version: int) -> None:
        """Let an ended batch's staged changes expire after the grace period."""
        name = StreamKeys(self.prefix, stream).upserts(version)
        self.connection.expire(name, self.retention.grace_seconds)


def _order(member: str, order_by: str) -> float:
    """Return the score of a record of a stream ordered by `order_by`."""
    try:
        return order_score(orjson.loads(member), order_by)
    except ValueError:  # the worker refuses such a record; never sort it before others
        return float("inf")


class FullRefresh:
    """The request for a full batch (POST /streams/<name>/refresh): a flag per stream."""

    def __init__(self, connection: Redis, prefix: str) -> None:
        self.connection = connection
        self.prefix = prefix

    def ask(self, stream: str) -> None:
        """Make the next batch of `stream` a full one."""
        self.connection.set(StreamKeys(self.prefix, stream).refresh, "1")

    def take(self, stream: str) -> bool:
        """Return whether a full batch was asked for, and forget the request."""
        return bool(self.connection.delete(StreamKeys(self.prefix, stream).refresh))
