"""Change sets between published versions: what each batch added, updated and removed.

Two structures per version (key names in `keys`; ``k`` is a record's key as canonical JSON):
the digests (hash: k -> digest of the record's canonical JSON, for every keyed record; read
once, when the next batch is diffed) and the change set (zset against the version it
replaced: every score is 0 and each member is "k<TAB>op<TAB>record" with op ``a`` (added),
``u`` (updated) or ``r`` (removed, record empty)).

JSON never holds a raw control character, so members sort by key first and a
lexicographic range (ZRANGEBYLEX) pages through one change set, or through several in step.
Both keys are written by the publish preparer with the staging TTL (idempotently: two
consumers write the same members), made persistent by the publish script in the same
atomic step that publishes or quarantines the batch, and expired with the rest of the
batch by `BatchWriter`: ``dig`` with the records, ``chg`` with the metadata (the history).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from redis import Redis

from app.records import get_path
from app.store.keys import StreamKeys

CHUNK = 5000
SEP = "\t"
# Sorts after every "k<TAB>op..." member of key k and before any greater key.
AFTER_KEY = SEP + "\x7f"


def record_key(member: str, path: str) -> str | None:
    """Return the record's key (the value at `path`) as canonical JSON, or None."""
    value = get_path(orjson.loads(member), path, None)
    return None if value is None else orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def digest(member: str) -> str:
    """Return a short digest of a record's canonical JSON (content equality)."""
    return hashlib.blake2b(member.encode(), digest_size=8).hexdigest()


@dataclass
class Diff:
    """Counts of one change set, as the batch metadata field ``changes`` shows them."""

    base: int
    added: int = 0
    updated: int = 0
    removed: int = 0
    unkeyed: int = 0
    duplicates: int = 0

    def to_field(self) -> str:
        return orjson.dumps({"from": self.base, "added": self.added, "updated": self.updated,
                             "removed": self.removed, "unkeyed": self.unkeyed,
                             "duplicates": self.duplicates}).decode()


class ChangeSets:
    """Computes and stores the change set of a version about to be published."""

    def __init__(self, connection: Redis, prefix: str, ttl_ms: int) -> None:
        self.connection = connection
        self.prefix = prefix
        self.ttl_ms = ttl_ms

    def members(self, name: str) -> Iterator[str]:
        """Yield the members of a zset in order, CHUNK at a time (flat memory)."""
        start = 0
        while True:
            chunk: Any = self.connection.zrange(name, start, start + CHUNK - 1)
            yield from chunk
            if len(chunk) < CHUNK:
                return
            start += CHUNK

    def of_version(self, stream: str, version: int) -> tuple[int, Iterator[str]]:
        """Return the size of `version`'s change set and an iterator over its members."""
        name = StreamKeys(self.prefix, stream).changes(version)
        return int(self.connection.zcard(name)), self.members(name)

    def compute(self, stream: str, version: int, base: int, key_path: str) -> Diff | None:
        """Diff version `version` against `base` (0: nothing) by key; None if impossible."""
        keys = StreamKeys(self.prefix, stream)
        before = self._digests(keys, base, key_path) if base else {}
        if before is None:
            return None
        diff, seen = Diff(base), set()
        dig: dict[str, str] = {}
        chg: dict[str, float] = {}
        for member in self.members(keys.records(version)):
            key = record_key(member, key_path)
            if key is None or key in seen:
                diff.unkeyed += key is None
                diff.duplicates += key is not None
                continue
            seen.add(key)
            dig[key] = now = digest(member)
            old = before.pop(key, None)
            if old != now:
                op = "a" if old is None else "u"
                diff.added += op == "a"
                diff.updated += op == "u"
                chg[f"{key}{SEP}{op}{SEP}{member}"] = 0
            if len(dig) >= CHUNK:
                self._write(keys, version, dig, chg)
        for key in before:
            chg[f"{key}{SEP}r{SEP}"] = 0
            diff.removed += 1
            if len(chg) >= CHUNK:
                self._write(keys, version, dig, chg)
        self._write(keys, version, dig, chg)
        return diff

    def _digests(self, keys: StreamKeys, version: int, key_path: str) -> dict[str, str] | None:
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
                rebuilt.setdefault(key, digest(member))
        return rebuilt

    def _write(self, keys: StreamKeys, version: int, dig: dict[str, str],
               chg: dict[str, float]) -> None:
        """Write and clear the pending digests and changes, with the staging TTL."""
        with self.connection.pipeline(transaction=False) as pipe:
            if dig:
                pipe.hset(keys.digests(version), mapping=dig)  # type: ignore[arg-type]
            if chg:
                pipe.zadd(keys.changes(version), chg)
            pipe.pexpire(keys.digests(version), self.ttl_ms)
            pipe.pexpire(keys.changes(version), self.ttl_ms)
            pipe.execute()
        dig.clear()
        chg.clear()
