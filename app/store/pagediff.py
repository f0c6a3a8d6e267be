"""Change sets staged by the pages themselves, so settling reads counters, not records.

The worker sends each record's key and digest with its page (`tasks.protocol.Keyer`), with
the base version it diffs against and the bucket counts (`plan`, once per batch). STORE_PAGE,
in the step that stores the page, records each digest in its bucket (`digests`; the first
of a key wins), stages the added and updated records against the base (``pchg``) and
counts as it goes: batch metadata fields ``keyed_receipts``, ``keyed_added``,
``keyed_updated``, ``keyed_matched``, ``keyed_dups``, ``keyed_unkeyed`` (with ``keying``,
``diff_base``, ``dig_buckets``), and per base bucket the base keys the batch holds
(``dig:seen``). At settle time the added and updated records are staged already; the
removed ones are the base's keys the batch never matched, ``records(base) -
keyed_matched`` of them, found in the base buckets whose size differs from their ``seen``
count (REMOVED_SCAN), so the walk grows with the removals, not with the batch. The publish
step renames ``pchg`` onto ``chg``.

`staged` answers None when the pages cannot stand for the batch, and the settle step diffs
the whole batch instead (`ChangeSets.compute`): a page sent without keys, keyed with another
key path or other ignored fields than the settle uses, against another base, a key that
occurs twice (the last one must win, which only the whole batch's order tells), or a
record without a key (the batch fails, naming them).
"""

from __future__ import annotations

from typing import Any

from redis import Redis

from app.store import digests, scripts
from app.store.changesets import Diff
from app.store.keys import StreamKeys

# Base buckets one REMOVED_SCAN step looks at (a few milliseconds of Redis time).
SCAN_BUCKETS = 2048
# The key of a record that has none, in a keyed page (never canonical JSON).
UNKEYED = "!"
_FIELDS = ("keying", "diff_base", "diff_broken", "keyed_receipts", "receipts", "keyed_dups",
           "keyed_unkeyed", "keyed_added", "keyed_updated", "keyed_matched",
           "records_received")


def keying(key_path: str, ignore: frozenset[str]) -> str:
    """Return how a page's keys and digests were computed: key path and ignored fields."""
    return key_path + "\t" + ",".join(sorted(ignore))


class PageDiffs:
    """Reads the change set that a batch's keyed pages staged."""

    def __init__(self, connection: Redis, prefix: str, ttl_ms: int) -> None:
        self.connection = connection
        self.prefix = prefix
        self.ttl_ms = ttl_ms
        self._scan = connection.register_script(scripts.REMOVED_SCAN)

    def staged(self, stream: str, version: int, base: int, key_path: str,
               ignore: frozenset[str]) -> Diff | None:
        """Return the diff of `version` against `base` as its pages staged it, or None
        when the whole batch must be diffed (see the module docstring)."""
        keys = StreamKeys(self.prefix, stream)
        raw: Any = self.connection.hmget(keys.batch(version), _FIELDS)
        meta = dict(zip(_FIELDS, raw, strict=True))

        def count(name: str) -> int:
            return int(meta[name] or 0)

        if (meta["diff_broken"] or meta["keying"] != keying(key_path, ignore)
                or count("diff_base") != base or meta["diff_base"] is None
                or count("keyed_receipts") != count("receipts")
                or count("keyed_dups") or count("keyed_unkeyed")):
            return None
        received = count("records_received")
        diff = Diff(base, records=received, kept=received, added=count("keyed_added"),
                    updated=count("keyed_updated"), paged=True)
        if base:
            held = int(str(self.connection.hget(keys.batch(base), "records") or 0))
            diff.removed = held - count("keyed_matched")
            if diff.removed < 0:
                return None
            if diff.removed and self._walk_removed(keys, version, base) != diff.removed:
                return None  # settled meanwhile by another consumer, or not as counted
        return diff

    def plan(self, stream: str) -> tuple[int, int, int] | None:
        """Return what a new batch of `stream` keys its pages against: (base version, its
        bucket count, the batch's bucket count); None when the base has no bucketed
        digests (an incremental version, or one stored before them): its settle walks."""
        keys = StreamKeys(self.prefix, stream)
        base = int(str(self.connection.get(keys.current) or 0))
        if not base:
            return 0, 0, digests.choose(None)
        raw: Any = self.connection.hmget(keys.batch(base), ("records", "dig_buckets"))
        records, buckets = (int(str(value or 0)) for value in raw)
        if not buckets:
            return None
        return base, buckets, digests.choose(records, buckets)

    def _walk_removed(self, keys: StreamKeys, version: int, base: int) -> int:
        """Stage the base's keys that the batch does not hold as removed; return how many
        (-1: the batch no longer runs)."""
        buckets = digests.bucket_count(self.connection, keys, base)
        mine = digests.bucket_count(self.connection, keys, version)
        found = 0
        for first in range(0, buckets, SCAN_BUCKETS):
            staged = int(self._scan(
                keys=[keys.batch(version), keys.digests(base), keys.digests(version),
                      keys.page_changes(version)],
                args=[first, min(first + SCAN_BUCKETS, buckets) - 1, buckets, mine,
                      self.ttl_ms]))
            if staged < 0:
                return -1
            found += staged
        return found
