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
compute the same. Both keys are staged with the staging TTL, in a transaction that
WATCHes the batch's metadata and writes only while the batch runs; the publish script
makes them persistent in the same atomic step that publishes or quarantines the batch,
and `BatchWriter` expires them with the rest of the batch: ``dig`` with the records,
``chg`` with the metadata (the history).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from redis import Redis, WatchError

from app.records import encode, get_path
from app.store import digests
from app.store.keys import StreamKeys

CHUNK = 5000
# Most bytes of changed records one settle keeps from its walk over the batch; beyond,
# the change set reads them again by rank.
PENDING_BYTES = 64 * 1024 * 1024
# Tries of one staging transaction whose batch metadata changed under it.
WRITE_ATTEMPTS = 10
SEP = "\t"
# Bytes of a record's content digest (48 bits: 8 characters of base64).
DIGEST_BYTES = 6
# Sorts after every "k<TAB>op..." member of key k and before any greater key.
AFTER_KEY = SEP + "\x7f"


def keyed_digest(member: str, path: str, ignore: frozenset[str] = frozenset()
                 ) -> tuple[str | None, str]:
    """Return a record's key at `path` (canonical JSON, None when absent or null) and its
    digest without the top-level fields `ignore`, parsing it once."""
    record = orjson.loads(member)
    value = get_path(record, path, None)
    key = None if value is None else orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    if ignore and isinstance(record, dict) and not ignore.isdisjoint(record):
        member = encode({name: value for name, value in record.items() if name not in ignore})
    digest = hashlib.blake2b(member.encode(), digest_size=DIGEST_BYTES).digest()
    return key, base64.b64encode(digest).decode()


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
    # The change set is the one the pages staged (`pagediff`), not one staged at settle.
    paged: bool = False

    def to_field(self) -> str:
        """Return the batch metadata field ``changes``."""
        return orjson.dumps({"from": self.base, "added": self.added, "updated": self.updated,
                             "removed": self.removed}).decode()


class _Walk:
    """What one walk over a batch's records learns: each rank's key and digest, the last
    rank of each key, and the records that changed against `before` (by rank), kept while
    they take less than PENDING_BYTES (else None: they are read again)."""

    def __init__(self, before: dict[str, str] | None) -> None:
        self.before = before
        self.order: list[str | None] = []
        self.digests: list[str] = []
        self.last: dict[str, int] = {}
        self.pending: dict[int, str] | None = {}
        self.pending_bytes = 0
        self.unkeyed = 0
        self.unkeyed_sample = ""

    def add(self, rank: int, member: str, key_path: str, ignore: frozenset[str]) -> None:
        key, now = keyed_digest(member, key_path, ignore)
        self.order.append(key)
        self.digests.append(now)
        if key is None:
            self.unkeyed += 1
            self.unkeyed_sample = self.unkeyed_sample or _describe(member)
            return
        self.last[key] = rank
        if self.pending is None or self.before is None or self.before.get(key) == now:
            return
        self.pending[rank] = member
        self.pending_bytes += len(member)
        if self.pending_bytes > PENDING_BYTES:
            self.pending = None


class ChangeSets:
    """Keys the records of a batch about to settle and stages its change set."""

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

    def compute(self, stream: str, version: int, base: int, key_path: str, *,
                ignore: frozenset[str] = frozenset(),
                ignore_base: frozenset[str] = frozenset()) -> Diff:
        """Key version `version` and diff it against `base` (0: nothing) by key.

        Records without a key are counted (`unkeyed`, and nothing is written); of records
        sharing a key the last wins (`losers`, for the publish step to remove). The diff
        ignores the fields `ignore` (`ignore_base` for `base`); it is not `comparable`
        when `base`'s digests and records are both gone. One walk reads every record and
        keeps the changed ones (up to PENDING_BYTES; beyond, they are read again by rank).
        """
        keys = StreamKeys(self.prefix, stream)
        diff = Diff(base)
        before = self._digests(keys, base, key_path, ignore_base) if base else {}
        walk = _Walk(before)
        for rank, member in enumerate(self.members(keys.records(version))):
            walk.add(rank, member, key_path, ignore)
        diff.records, diff.kept = len(walk.order), len(walk.last)
        diff.unkeyed, diff.unkeyed_sample = walk.unkeyed, walk.unkeyed_sample
        if diff.unkeyed:
            return diff
        losers = [rank for rank, key in enumerate(walk.order)
                  if key is not None and walk.last[key] != rank]
        diff.losers = list(self._at(keys.records(version), losers).values())
        diff.comparable = before is not None
        if before is not None:
            self._stage(keys, version, walk, before, diff)
        return diff

    def _stage(self, keys: StreamKeys, version: int, walk: _Walk, before: dict[str, str],
               diff: Diff) -> None:
        """Stage the winners' digests and the change set against `before`, CHUNK of each
        per round trip."""
        mine = [(key, walk.digests[rank]) for key, rank in walk.last.items()]
        buckets = (digests.bucket_count(self.connection, keys, version)
                   or digests.choose(len(mine), digests.bucket_count(self.connection, keys,
                                                                     diff.base)))
        changed = sorted((rank, key, "a" if before.get(key) is None else "u")
                         for key, rank in walk.last.items()
                         if before.get(key) != walk.digests[rank])
        removed = [f"{key}{SEP}r{SEP}" for key in before if key not in walk.last]
        diff.added = sum(op == "a" for _, _, op in changed)
        diff.updated = len(changed) - diff.added
        diff.removed = len(removed)
        for start in range(0, max(len(mine), len(changed), len(removed), 1), CHUNK):
            part = changed[start:start + CHUNK]
            found = walk.pending if walk.pending is not None else self._at(
                keys.records(version), [rank for rank, _, _ in part])
            if any(rank not in found for rank, _, _ in part):
                return  # read after another consumer settled: write nothing
            self._write(keys, version, buckets, dict(mine[start:start + CHUNK]),
                        [f"{key}{SEP}{op}{SEP}{found[rank]}" for rank, key, op in part]
                        + removed[start:start + CHUNK])

    def _at(self, name: str, ranks: list[int]) -> dict[int, str]:
        """Return the members at `ranks` (sorted): a slice where they are dense, else one
        by one, in one round trip per CHUNK ranks."""
        found: dict[int, str] = {}
        for start in range(0, len(ranks), CHUNK):
            wanted = ranks[start:start + CHUNK]
            low, high = wanted[0], wanted[-1]
            if high - low < 4 * len(wanted):
                chunk: Any = self.connection.zrange(name, low, high)
                found.update({rank: chunk[rank - low] for rank in wanted
                              if rank - low < len(chunk)})
                continue
            with self.connection.pipeline(transaction=False) as pipe:
                for rank in wanted:
                    pipe.zrange(name, rank, rank)
                replies: Any = pipe.execute()
            found.update({rank: reply[0] for rank, reply in zip(wanted, replies, strict=True)
                          if reply})
        return found

    def _digests(self, keys: StreamKeys, version: int, key_path: str,
                 ignore: frozenset[str]) -> dict[str, str] | None:
        """Return the key -> digest map of a version, rebuilt from its records if need be."""
        found = digests.read(self.connection, keys, version)
        if found is not None:
            return found
        if not self.connection.exists(keys.records(version)):
            count = self.connection.hget(keys.batch(version), "records")
            return {} if int(str(count or 0)) == 0 else None
        rebuilt: dict[str, str] = {}
        for member in self.members(keys.records(version)):
            key, now = keyed_digest(member, key_path, ignore)
            if key is not None:
                rebuilt[key] = now
        return rebuilt

    def _write(self, keys: StreamKeys, version: int, buckets: int, dig: dict[str, str],
               chg: list[str]) -> None:
        """Stage digests and changes in one transaction, only while the batch runs.

        The transaction WATCHes the batch's metadata: once the batch has settled
        (published, quarantined, ended) nothing is written, so a slow second consumer can
        neither add to a published change set nor give it an expiry.
        """
        meta = keys.batch(version)
        # transaction=True: a cluster client's pipeline WATCHes only in a transaction.
        with self.connection.pipeline(transaction=True) as pipe:
            for _ in range(WRITE_ATTEMPTS):
                try:
                    pipe.watch(meta)
                    if pipe.hget(meta, "status") != "running":
                        return
                    pipe.multi()
                    pipe.hset(meta, "dig_buckets", buckets)
                    for bucket, part in digests.by_bucket(dig, buckets).items():
                        pipe.hset(keys.digest_bucket(version, bucket),
                                  mapping=part)  # type: ignore[arg-type]
                    if chg:
                        pipe.zadd(keys.changes(version), dict.fromkeys(chg, 0))
                    pipe.pexpire(keys.changes(version), self.ttl_ms)
                    pipe.execute()
                    return
                except WatchError:  # the metadata changed meanwhile: look again
                    continue
        raise WatchError(f"batch {version} of {keys.stream!r} kept changing while its "
                         "change set was staged")
