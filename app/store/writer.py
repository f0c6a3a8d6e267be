"""Batch lifecycle writes: begin, store a page, complete, publish, fail.

Writes the batch metadata (hash), the staging sorted set of records (member: the record as
canonical JSON; score: its order), the page receipts (hash), the history index and the
pointer to the current version; the layout is in `keys`. Every step is one Lua script
(`scripts`), so pages may arrive in any order, more than once, from several consumers, and
a batch becomes visible in exactly one atomic step or never. Whenever a batch ends, what
it leaves behind is bounded (`_retire`): the readable versions, the newest quarantined
batch, and a history of `history_length` batches.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

import orjson
from redis import Redis, RedisError, ResponseError

from app.exceptions import BadRecord, out_of_memory
from app.records import now_iso
from app.store import scripts
from app.store.definitions import Definitions
from app.store.keys import StreamKeys
from app.store.locks import BatchLease
from app.store.replication import NO_REPLICAS, Replicas
from config.streams import BatchLimits

log = logging.getLogger(__name__)

# Verdicts of `store_packed`: the page made its batch whole; the page took its batch over
# its budget, and the batch failed (`too_large`).
WHOLE = 2
TOO_LARGE = -3
# The verdict of `store_packed` when the batch's staging data expired while it ran.
STAGING_EXPIRED = -2
# The error STORE_PAGE answers for a score that is not a number.
_BAD_RECORD = re.compile(r"^bad_record (?P<page>\d+) (?P<position>\d+) (?P<score>\S*)")
STORE_FULL: dict[str, object] = {"kind": "store_full",
              "message": "Redis refused a write: it reached its maxmemory; the batch's "
                         "staged records were freed"}


def _int(value: Any) -> int:
    return int(value)


@dataclass(frozen=True)
class Retention:
    """How long batch data lives: readable versions, grace period, history lengths."""

    keep_versions: int = 3
    grace_seconds: int = 600
    history_length: int = 200
    change_history: int = 24
    staging_ttl_ms: int = 780_000
    lock_ttl_ms: int = 780_000


class BatchWriter:
    """Writes the batches of every stream; used by the ingest consumer only."""

    def __init__(self, connection: Redis, prefix: str, retention: Retention,
                 definitions: Definitions, replicas: Replicas = NO_REPLICAS) -> None:
        self.connection = connection
        self.prefix = prefix
        self.retention = retention
        self.definitions = definitions
        self.replicas = replicas
        self._begin = connection.register_script(scripts.BEGIN)
        self._store_page = connection.register_script(scripts.STORE_PAGE)
        self._complete = connection.register_script(scripts.COMPLETE)
        self._publish = connection.register_script(scripts.PUBLISH)
        self._finish = connection.register_script(scripts.FINISH_UNPUBLISHED)
        self._keep_change_data = connection.register_script(scripts.KEEP_CHANGE_DATA)
        self._retire_buckets = connection.register_script(scripts.RETIRE_DIGESTS)

    def begin(self, lease: BatchLease) -> str:
        """Record that a batch started; older batches still running are abandoned."""
        keys = StreamKeys(self.prefix, lease.stream)
        status = self._begin(keys=[keys.batch(lease.version), keys.batches, keys.seq],
                             args=[lease.version, lease.token, now_iso()])
        if status == "foreign":  # of a deleted stream: leave the new stream's batches be
            return str(status)
        older = self.connection.zrevrangebyscore(keys.batches, f"({lease.version}", "-inf",
                                                 start=0, num=5)
        for version in older:
            self.finish(lease.stream, _int(version), "abandoned",
                        {"kind": "abandoned", "message": f"batch {lease.version} started"})
        return str(status)

    def store_packed(self, lease: BatchLease, page: int, members: str, scores: str,
                     count: int, part: tuple[int, int] = (1, 1),
                     keyed: tuple[str, ...] = ("", "", "", "", "0", "0", "0")) -> int:
        """Stage one packed page, or part `part[0]` of `part[1]` of it (members joined by
        newlines, scores by spaces), within the stream's `batch_limits`.

        Returns TOO_LARGE (the batch failed now, over its budget), STAGING_EXPIRED, -1 (the
        batch ended), 0 (already stored), 1 (stored) or WHOLE (every page is in: stored now,
        or before by a consumer that died settling). Raises BadRecord, with nothing of the
        page written, for a score that is no number. `keyed` is (keys, digests, hashes,
        keying, base, buckets, base buckets) of a keyed page (`app.store.pagediff`): its
        change set is staged against version `base` as it is stored.
        """
        keys = StreamKeys(self.prefix, lease.stream)
        definition = self.definitions.get(lease.stream)
        limits = definition.batch_limits if definition else BatchLimits()
        base = int(keyed[4])
        try:
            verdict = int(self._store_page(
                keys=[keys.batch(lease.version), keys.records(lease.version),
                      keys.pages(lease.version), keys.lock, keys.batches, keys.seq,
                      keys.digests(lease.version), keys.page_changes(lease.version),
                      keys.digests(base), keys.current],
                args=[lease.version, page, count, self.retention.staging_ttl_ms, lease.value,
                      self.retention.lock_ttl_ms, members, scores, part[0], part[1],
                      limits.max_records, limits.max_bytes, now_iso(), *keyed]))
        except ResponseError as exc:
            bad = _BAD_RECORD.match(str(exc))
            if bad is None:
                raise
            raise BadRecord(int(bad["page"]), int(bad["position"]),
                            f"score {bad['score']!r} is not a number") from None
        if verdict == TOO_LARGE:
            self._retire(keys)
        return verdict

    def keep_change_data(self, stream: str, version: int) -> bool:
        """Make a settled batch's change data permanent again (see KEEP_CHANGE_DATA)."""
        keys = StreamKeys(self.prefix, stream)
        return bool(self._keep_change_data(
            keys=[keys.batch(version), keys.current, keys.digests(version),
                  keys.changes(version)], args=[version]))

    def complete(self, lease: BatchLease, pages: int, records: int,
                 info: dict[str, str] | None = None) -> str:
        """Record the totals the fetch announced; the batch publishes once they match."""
        stream, version = lease.stream, lease.version
        keys = StreamKeys(self.prefix, stream)
        args: list[str | int | float] = [version, pages, records, lease.token]
        for field, value in (info or {}).items():
            args += [field, value]
        return str(self._complete(keys=[keys.batch(version), keys.batches, keys.seq],
                                  args=args))

    def try_publish(self, stream: str, version: int, extra: dict[str, str] | None = None,
                    losers: list[str] | None = None, paged: bool = False) -> str:
        """Publish the batch if it is whole and still owns the stream; return the verdict.

        `losers` leave the records in the same step (records an equal key replaced).
        Verdicts: published, waiting (pages missing), staging_expired (what is stored falls
        short of the totals), not_running, superseded, stale. `paged`: the change set is
        the one the pages staged.
        """
        return self._commit(stream, version, "auto", "", extra, losers, paged)

    def quarantine(self, stream: str, version: int, reason: str,
                   extra: dict[str, str] | None = None, losers: list[str] | None = None,
                   paged: bool = False) -> str:
        """Keep a whole batch unpublished as `quarantined` (a gate refused it)."""
        return self._commit(stream, version, "quarantine", reason, extra, losers, paged)

    def publish_quarantined(self, stream: str, version: int) -> str:
        """Publish a quarantined batch by hand; verdicts: published, stale, not_quarantined."""
        return self._commit(stream, version, "manual", "", None, None, False)

    def discard(self, stream: str, version: int) -> str:
        """Discard a quarantined batch: its records go at once."""
        return self.finish(stream, version, "discarded",
                           {"kind": "discarded", "message": "discarded by hand"},
                           required="quarantined")

    def _commit(self, stream: str, version: int, mode: str, reason: str,
                extra: dict[str, str] | None, losers: list[str] | None, paged: bool) -> str:
        keys = StreamKeys(self.prefix, stream)
        args: list[str | int | float] = [version, now_iso(), self.retention.grace_seconds,
                                         mode, reason, "\n".join(losers or ()),
                                         "1" if paged else "0"]
        for field, value in (extra or {}).items():
            args += [field, value]
        verdict = str(self._publish(
            keys=[keys.batch(version), keys.records(version), keys.pages(version),
                  keys.current, keys.lock, keys.digests(version), keys.changes(version),
                  keys.page_changes(version)],
            args=args))
        if verdict in ("published", "quarantined"):
            self.replicas.wait(keys.current)  # acknowledged only once a replica has it
        if verdict in ("published", "quarantined", "superseded", "stale"):
            self._retire(keys)
        return verdict

    def finish(self, stream: str, version: int, status: str, error: dict[str, object],
               required: str = "running", token: str = "") -> str:
        """End a batch unpublished (failed, abandoned, cancelled, discarded); its records
        and staging go at once. Return its final status (`foreign`: the batch named by
        `token` is not this stream's)."""
        keys = StreamKeys(self.prefix, stream)
        final = self._end(keys, version, status, error, token, required)
        if final == status:
            self._retire(keys)
        return final

    def _end(self, keys: StreamKeys, version: int, status: str, error: dict[str, object],
             token: str = "", required: str = "running") -> str:
        return str(self._finish(
            keys=[keys.batch(version), keys.records(version), keys.pages(version), keys.lock,
                  keys.batches, keys.seq, keys.deliveries(version), keys.digests(version),
                  keys.changes(version), keys.page_changes(version)],
            args=[version, status, now_iso(), orjson.dumps(error).decode(), token,
                  required]))

    def fail_full(self, lease: BatchLease) -> str:
        """End a batch `failed` (`store_full`) when Redis refused one of its writes for
        memory; its staged records go first, so the failure can be written."""
        return self.finish(lease.stream, lease.version, "failed", STORE_FULL,
                           token=lease.token)

    def _retire(self, keys: StreamKeys) -> None:
        """Bound what the stream keeps, after any batch ended (best effort when full).

        The newest `keep_versions` published versions stay readable; only the current
        one keeps its digests; the newest `change_history` keep their change sets; of the
        quarantined batches only the newest, if newer than the current version, stays
        (the others are discarded and their records go at once); the history keeps the
        newest `history_length` batches (and the current version, always).
        """
        try:
            self._bound(keys)
        except RedisError as exc:
            if not out_of_memory(exc):
                raise
            log.warning("history not trimmed stream=%s: Redis is full", keys.stream)

    def _bound(self, keys: StreamKeys) -> None:
        versions = [_int(v) for v in self.connection.zrevrange(keys.batches, 0, -1)]
        with self.connection.pipeline(transaction=False) as pipe:
            pipe.get(keys.current)
            for version in versions:
                pipe.hmget(keys.batch(version), "status", "dig_buckets", "dig_retired")
            current_raw, *metas = pipe.execute()
        current = _int(current_raw or 0)
        status_of = {v: meta[0] for v, meta in zip(versions, metas, strict=True)}
        bucketed = {v for v, meta in zip(versions, metas, strict=True)
                    if meta[1] and not meta[2]}
        complete = [v for v in versions if status_of[v] == "complete" and v <= current]
        doomed = [keys.records(v) for v in complete[self.retention.keep_versions:]]
        doomed += [keys.digests(v) for v in complete if v != current]
        doomed += [keys.changes(v) for v in complete[self.retention.change_history:]]
        held = [v for v in versions if status_of[v] == "quarantined"]  # newest first
        for version in held:
            if version < current:
                self._drop_quarantined(keys, version, f"version {current} was published")
            elif version != held[0]:
                self._drop_quarantined(keys, version, f"batch {held[0]} was quarantined")
        trimmed = [v for v in versions[self.retention.history_length:] if v != current]
        doomed += [name for v in trimmed for name in (
            keys.batch(v), keys.records(v), keys.pages(v), keys.deliveries(v),
            keys.digests(v), keys.changes(v), keys.page_changes(v))]
        self._expire_once(doomed)
        for version in {*(v for v in complete if v != current), *trimmed}:
            if version in bucketed:
                self._retire_digests(keys, version)
        if trimmed:
            self.connection.zrem(keys.batches, *trimmed)

    def _retire_digests(self, keys: StreamKeys, version: int) -> None:
        """Give the digest buckets of a version no longer current the grace period, once
        (they carry no TTL: see `digests`)."""
        self._retire_buckets(keys=[keys.batch(version), keys.digests(version)],
                             args=[self.retention.grace_seconds])

    def _drop_quarantined(self, keys: StreamKeys, version: int, why: str) -> None:
        """Discard a quarantined batch that can never be published, or that a newer
        quarantined batch replaced; its records go at once."""
        self._end(keys, version, "discarded", {"kind": "discarded", "message": f"{why} after it"},
                  required="quarantined")

    def _expire_once(self, names: list[str]) -> None:
        """Give each key the grace period unless it already has a TTL (Redis 6.2: no NX)."""
        if not names:
            return
        with self.connection.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.ttl(name)
            ttls = pipe.execute()
        with self.connection.pipeline(transaction=False) as pipe:
            for name, ttl in zip(names, ttls, strict=True):
                if ttl == -1:
                    pipe.expire(name, self.retention.grace_seconds)
            pipe.execute()
