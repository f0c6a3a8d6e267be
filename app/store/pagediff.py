"""Change sets staged by the pages themselves, so settling reads counters, not records.

The worker sends each record's key and digest with its page (`tasks.protocol.Keyer`), and
STORE_PAGE, in the step that stores the page, records them in the batch's digests (``dig``,
the first of a key wins) and stages the added and updated records against the version that
was current when the batch began (``pchg``), counting as it goes (batch metadata fields
``keyed_receipts``, ``keyed_added``, ``keyed_updated``, ``keyed_matched``, ``keyed_dups``,
``keyed_unkeyed``, with ``keying`` and ``diff_base``). At settle time the added and updated
records are already staged; the removed ones are the base's keys the batch never matched,
``HLEN(base dig) - keyed_matched`` of them, so a batch that removed nothing costs a few
counters, and one that did costs one server-side walk over the base's digests
(REMOVED_SCAN steps). The publish step renames ``pchg`` onto ``chg``.

`staged` answers None when the pages cannot stand for the batch, and the settle step diffs
the whole batch instead (`ChangeSets.compute`): a page sent without keys, keyed with another
key path or other ignored fields than the settle uses, against another base, a key that
occurs twice (the last one must win, which only the whole batch's order tells), or a
record without a key (the batch fails, naming them).
"""

from __future__ import annotations

from typing import Any

from redis import Redis

from app.store import scripts
from app.store.changesets import Diff
from app.store.keys import StreamKeys

# Base digests one REMOVED_SCAN step looks at (about a millisecond of Redis time).
SCAN_COUNT = 2000
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
            diff.removed = int(self.connection.hlen(keys.digests(base))) - count(
                "keyed_matched")
            if diff.removed < 0:
                return None
            if diff.removed:
                self._walk_removed(keys, version, base)
        return diff

    def _walk_removed(self, keys: StreamKeys, version: int, base: int) -> None:
        """Stage the base's keys that the batch does not hold as removed."""
        total = int(self.connection.hlen(keys.digests(base)))
        cursor: Any = "0"
        for _ in range(4 * (total // SCAN_COUNT) + 16):  # HSCAN ends in about total/COUNT
            cursor = self._scan(keys=[keys.batch(version), keys.digests(base),
                                      keys.digests(version), keys.page_changes(version)],
                                args=[cursor, SCAN_COUNT, self.ttl_ms])
            if str(cursor) in ("0", "-1"):
                return
        raise RuntimeError(f"the walk over {keys.digests(base)} did not end")
