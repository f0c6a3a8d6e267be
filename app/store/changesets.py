"""Change sets between published versions, and the one-record-per-key rule of a batch.

Two structures per version (key names in `keys`; ``k`` is a record's key as canonical JSON):
the digests (hash: k -> digest of the record's canonical JSON without the fields its
middleware set from the batch context, such as ``_fetched_at``; read once, when the next
batch is diffed) and the change set (zset against the version it replaced: every score is
0 and each member is "k<TAB>op<TAB>record" with op ``a`` (added), ``u`` (updated) or ``r``
(removed, record empty)).

JSON never holds a raw control character, so members sort by key first and a
lexicographic range (ZRANGEBYLEX) pages through one change set, or through several in step.

A batch holds one record per key: of records sharing a key, the last in the batch's order
wins, and the others ("losers") leave the records in the publish step itself, so the
records never change while a batch runs and two consumers computing the same batch at once
compute the same. Both keys are staged with the staging TTL by `WRITE_CHANGES`, only while
the batch runs; the publish script makes them persistent in the same atomic step that
publishes or quarantines the batch, and `BatchWriter` expires them with the rest of the
batch: ``dig`` with the records, ``chg`` with the metadata (the history).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from redis import Redis

from app.records import encode, get_path
from app.store import scripts
from app.store.keys import StreamKeys

CHUNK = 5000
SEP = "\t"
# Sorts after every "k<TAB>op..." member of key k and before any greater key.
AFTER_KEY = SEP + "\x7f"


def record_key(member: str, path: str) -> str | None:
    """Return the record's key (the value at `path`) as canonical JSON, or None."""
    value = get_path(orjson.loads(member), path, None)
    return None if value is None else orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def digest(member: str, ignore: frozenset[str] = frozenset()) -> str:
    """Return a short digest of a record's canonical JSON without its top-level fields
    `ignore` (content equality, blind to what the batch context set)."""
    if ignore:
        record = orjson.loads(member)
        if isinstance(record, dict) and not ignore.isdisjoint(record):
            member = encode({name: value for name, value in record.items()
                             if name not in ignore})
    return hashlib.blake2b(member.encode(), digest_size=8).hexdigest()


def _describe(member: str) -> str:
    """Name the fields of a record (never its values), for an error message."""
    record = orjson.loads(member)
    if not isinstance(record, dict):
        return f"a {type(record).__name__}, not an object"
    names = sorted(record)
    more = f", ... ({len(names)} fields)" if len(names) > 10 else ""
    return "fields " + ", ".join(names[:10]) + more if names else "no fields"


@dataclass
class Diff:
    """A batch against the version it replaces: counts, and the records to leave out."""

    base: int
    records: int = 0
    kept: int = 0
    added: int = 0
    updated: int = 0
    removed: int = 0
    unkeyed: int = 0
    unkeyed_sample: str = ""
    comparable: bool = True
    losers: list[str] = field(default_factory=list)

    def to_field(self) -> str:
        """Return the batch metadata field ``changes``."""
        return orjson.dumps({"from": self.base, "added": self.added, "updated": self.updated,
                             "removed": self.removed}).decode()


class ChangeSets:
    """Keys the records of a batch about to settle and stages its change set."""

    def __init__(self, connection: Redis, prefix: str, ttl_ms: int) -> None:
        self.connection = connection
        self.prefix = prefix
        self.ttl_ms = ttl_ms
        self._write_changes = connection.register_script(scripts.WRITE_CHANGES)

    def members(self, name: str) -> Iterator[str]:
        """Yield the members of a zset in order, CHUNK at a time (flat memory)."""
        start = 0
        while True:
            chunk: Any = self.connection.zrange(name, start, start + CHUNK - 1)
            yield from chunk
            if len(chunk) < CHUNK:
                return
            start += CHUNK

    def compute(self, stream: str, version: int, base: int, key_path: str, *,
                ignore: frozenset[str] = frozenset(),
                ignore_base: frozenset[str] = frozenset()) -> Diff:
        """Key version `version` and diff it against `base` (0: nothing) by key.

        Records without a key are counted (`unkeyed`, and nothing is written); of records
        sharing a key the last wins (`losers`, for the publish step to remove). The diff
        ignores the fields `ignore` (`ignore_base` for `base`); it is not `comparable`
        when `base`'s digests and records are both gone.
        """
        keys = StreamKeys(self.prefix, stream)
        diff = Diff(base)
        order: list[str | None] = []
        last: dict[str, int] = {}
        for rank, member in enumerate(self.members(keys.records(version))):
            key = record_key(member, key_path)
            order.append(key)
            if key is None:
                diff.unkeyed += 1
                diff.unkeyed_sample = diff.unkeyed_sample or _describe(member)
            else:
                last[key] = rank
        diff.records, diff.kept = len(order), len(last)
        if diff.unkeyed:
            return diff
        before = self._digests(keys, base, key_path, ignore_base) if base else {}
        diff.comparable = before is not None
        self._diff(keys, version, order, last, before, ignore, diff)
        return diff

    def _diff(self, keys: StreamKeys, version: int, order: list[str | None],
              last: dict[str, int], before: dict[str, str] | None, ignore: frozenset[str],
              diff: Diff) -> None:
        """Walk the records again: set losers aside, stage digests and the change set."""
        dig: dict[str, str] = {}
        chg: list[str] = []
        for rank, member in enumerate(self.members(keys.records(version))):
            if rank >= len(order):  # read after another consumer settled: nothing is written
                break
            key = order[rank]
            if key is None or last.get(key) != rank:
                diff.losers.append(member)
                continue
            if before is None:
                continue
            dig[key] = now = digest(member, ignore)
            old = before.pop(key, None)
            if old != now:
                op = "a" if old is None else "u"
                diff.added += op == "a"
                diff.updated += op == "u"
                chg.append(f"{key}{SEP}{op}{SEP}{member}")
            if len(dig) >= CHUNK:
                self._write(keys, version, dig, chg)
        for key in before or ():
            chg.append(f"{key}{SEP}r{SEP}")
            diff.removed += 1
            if len(chg) >= CHUNK:
                self._write(keys, version, dig, chg)
        if before is not None:
            self._write(keys, version, dig, chg)

    def _digests(self, keys: StreamKeys, version: int, key_path: str,
                 ignore: frozenset[str]) -> dict[str, str] | None:
        """Return the key -> digest map of a version, rebuilt from its records if need be."""
        found: dict[str, str] = dict(self.connection.hscan_iter(keys.digests(version),
                                                                count=CHUNK))
        if found or not self.connection.exists(keys.records(version)):
            count = self.connection.hget(keys.batch(version), "records")
            return found if found or int(str(count or 0)) == 0 else None
        rebuilt: dict[str, str] = {}
        for member in self.members(keys.records(version)):
            key = record_key(member, key_path)
            if key is not None:
                rebuilt[key] = digest(member, ignore)
        return rebuilt

    def _write(self, keys: StreamKeys, version: int, dig: dict[str, str],
               chg: list[str]) -> None:
        """Stage and clear the pending digests and changes, while the batch runs."""
        args: list[str | int] = [self.ttl_ms]
        for key, value in dig.items():
            args += [key, value]
        args.append("")
        args += chg
        self._write_changes(keys=[keys.batch(version), keys.digests(version),
                                  keys.changes(version)], args=args)
        dig.clear()
        chg.clear()
