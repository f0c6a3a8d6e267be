"""The content digests of a version's records, kept in buckets of a few dozen keys each.

A version's digests (record key -> digest, see `changesets.keyed_digest`) are split over
``dig_buckets`` hashes (the count is in the batch metadata; a power of two): a key lives in
bucket ``int(sha1(key)[:7], 16) % dig_buckets``; the worker sends each key's hash with its
page (Lua has no SHA-1 of its own in every Redis we test with). Buckets of about
`PER_BUCKET` keys are small enough for Redis to keep each one compact (a listpack: about
20 bytes a record instead of 80 in one big hash), and they let the settle step find the
removed keys of a batch bucket by bucket (`pagediff`). Buckets carry no TTL: every way a
batch ends deletes or expires them (the
scripts and `BatchWriter._bound`), as it does its records.
"""

from __future__ import annotations

import hashlib
from typing import Any

from redis import Redis

from app.store.keys import StreamKeys

# Keys a bucket is sized for; a new count is chosen when a version holds fewer than
# PER_BUCKET / 6 or more than 128 (Redis' default listpack bound) keys per bucket.
PER_BUCKET = 48
MAX_BUCKETS = 1 << 16
# Buckets read per round trip.
READ_CHUNK = 256


def bucket_hash(key: str) -> str:
    """Return the hash that places a record key in its bucket (7 hex digits)."""
    return hashlib.sha1(key.encode()).hexdigest()[:7]


def bucket_of(key: str, buckets: int) -> int:
    """Return the bucket of a record key among `buckets`."""
    return int(bucket_hash(key), 16) % buckets


def choose(records: int | None, previous: int = 0) -> int:
    """Return the bucket count for a version of `records` records (None: not known yet),
    keeping `previous` (the base version's count) while it still fits."""
    if records is None:
        return previous or 1024  # an empty bucket takes no memory
    if previous and PER_BUCKET // 6 * previous <= records <= 128 * previous:
        return previous
    buckets = 1
    while buckets * PER_BUCKET < records and buckets < MAX_BUCKETS:
        buckets *= 2
    return buckets


def bucket_count(connection: Redis, keys: StreamKeys, version: int) -> int:
    """Return the bucket count of `version` (0: it has no bucketed digests)."""
    return int(str(connection.hget(keys.batch(version), "dig_buckets") or 0))


def read(connection: Redis, keys: StreamKeys, version: int) -> dict[str, str] | None:
    """Return every key -> digest of `version`, or None when it has no bucketed digests
    or fewer than its records (some went: they must be rebuilt from the records)."""
    raw: Any = connection.hmget(keys.batch(version), ("dig_buckets", "records"))
    buckets, records = (int(str(value or 0)) for value in raw)
    if not buckets:
        return None
    found: dict[str, str] = {}
    for start in range(0, buckets, READ_CHUNK):
        with connection.pipeline(transaction=False) as pipe:
            for bucket in range(start, min(start + READ_CHUNK, buckets)):
                pipe.hgetall(keys.digest_bucket(version, bucket))
            replies: Any = pipe.execute()
        for reply in replies:
            found.update(reply)
    return found if len(found) >= records else None


def by_bucket(digests: dict[str, str], buckets: int) -> dict[int, dict[str, str]]:
    """Group key -> digest pairs by their bucket."""
    grouped: dict[int, dict[str, str]] = {}
    for key, digest in digests.items():
        grouped.setdefault(bucket_of(key, buckets), {})[key] = digest
    return grouped
