"""Batch lifecycle writes: begin, store a page, complete, publish, fail.

Writes the batch metadata (hash), the staging sorted set of records (member: the record as
canonical JSON; score: its order), the page receipts (hash), the history index and the
pointer to the current version; the layout is in `keys`. Every step is one Lua script
(`scripts`), so pages may arrive in any order, more than once, from several consumers, and
a batch becomes visible in exactly one atomic step or never.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson
from redis import Redis, ResponseError

from app.exceptions import BadRecord
from app.records import now_iso
from app.store import scripts
from app.store.keys import StreamKeys
from app.store.locks import BatchLease
from app.store.replication import NO_REPLICAS, Replicas

# The verdict of `store_packed` for the page that made its batch whole.
WHOLE = 2
# The verdict of `store_packed` when the batch's staging data expired while it ran.
STAGING_EXPIRED = -2
# The error STORE_PAGE answers for a score that is not a number.
_BAD_RECORD = re.compile(r"^bad_record (?P<page>\d+) (?P<position>\d+) (?P<score>\S*)")


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
                 replicas: Replicas = NO_REPLICAS) -> None:
        self.connection = connection
        self.prefix = prefix
        self.retention = retention
        self.replicas = replicas
        self._begin = connection.register_script(scripts.BEGIN)
        self._store_page = connection.register_script(scripts.STORE_PAGE)
        self._complete = connection.register_script(scripts.COMPLETE)
        self._publish = connection.register_script(scripts.PUBLISH)
        self._finish = connection.register_script(scripts.FINISH_UNPUBLISHED)
        self._keep_change_data = connection.register_script(scripts.KEEP_CHANGE_DATA)

    def begin(self, lease: BatchLease) -> str:
        """Record that a batch started; older batches still running are abandoned."""
        keys = StreamKeys(self.prefix, lease.stream)
        status = self._begin(keys=[keys.batch(lease.version), keys.batches],
                             args=[lease.version, lease.token, now_iso()])
        older = self.connection.zrevrangebyscore(keys.batches, f"({lease.version}", "-inf",
                                                 start=0, num=5)
        for version in older:
            self.finish(lease.stream, _int(version), "abandoned",
                        {"kind": "abandoned", "message": f"batch {lease.version} started"})
        return str(status)

    def store_packed(self, lease: BatchLease, page: int, members: str, scores: str,
                     count: int) -> int:
        """Stage one packed page (members joined by newlines, scores by spaces).

        Returns STAGING_EXPIRED, -1 (the batch ended), 0 (already stored), 1 (stored) or
        WHOLE (every page is in: stored now, or before by a consumer that died settling).
        Raises BadRecord, with nothing of the page written, for a score that is no number.
        """
        keys = StreamKeys(self.prefix, lease.stream)
        try:
            return int(self._store_page(
                keys=[keys.batch(lease.version), keys.records(lease.version),
                      keys.pages(lease.version), keys.lock, keys.batches],
                args=[lease.version, page, count, self.retention.staging_ttl_ms, lease.value,
                      self.retention.lock_ttl_ms, members, scores]))
        except ResponseError as exc:
            bad = _BAD_RECORD.match(str(exc))
            if bad is None:
                raise
            raise BadRecord(int(bad["page"]), int(bad["position"]),
                            f"score {bad['score']!r} is not a number") from None

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
        return str(self._complete(keys=[keys.batch(version), keys.batches], args=args))

    def try_publish(self, stream: str, version: int,
                    extra: dict[str, str] | None = None) -> str:
        """Publish the batch if it is whole and still owns the stream; return the verdict.

        Verdicts: published, waiting (pages missing), staging_expired (what is stored falls
        short of the totals), not_running, superseded, stale.
        """
        return self._commit(stream, version, "auto", "", extra)

    def quarantine(self, stream: str, version: int, reason: str,
                   extra: dict[str, str] | None = None) -> str:
        """Keep a whole batch unpublished as `quarantined` (a gate refused it)."""
        return self._commit(stream, version, "quarantine", reason, extra)

    def publish_quarantined(self, stream: str, version: int) -> str:
        """Publish a quarantined batch by hand; verdicts: published, stale, not_quarantined."""
        return self._commit(stream, version, "manual", "", None)

    def discard(self, stream: str, version: int) -> str:
        """Discard a quarantined batch; its records expire after the grace period."""
        status = self.finish(stream, version, "discarded",
                             {"kind": "discarded", "message": "discarded by hand"},
                             required="quarantined")
        if status == "discarded":
            keys = StreamKeys(self.prefix, stream)
            self._expire_once([keys.digests(version), keys.changes(version)])
        return status

    def _commit(self, stream: str, version: int, mode: str, reason: str,
                extra: dict[str, str] | None) -> str:
        keys = StreamKeys(self.prefix, stream)
        args: list[str | int | float] = [version, now_iso(), self.retention.grace_seconds,
                                         mode, reason]
        for field, value in (extra or {}).items():
            args += [field, value]
        verdict = str(self._publish(
            keys=[keys.batch(version), keys.records(version), keys.pages(version),
                  keys.current, keys.lock, keys.digests(version), keys.changes(version)],
            args=args))
        if verdict in ("published", "quarantined"):
            self.replicas.wait(keys.current)  # acknowledged only once a replica has it
        if verdict == "published":
            self._retire_old_versions(keys, version)
        return verdict

    def finish(self, stream: str, version: int, status: str, error: dict[str, object],
               required: str = "running") -> str:
        """End a batch unpublished (failed, abandoned, cancelled); return its final status."""
        keys = StreamKeys(self.prefix, stream)
        return str(self._finish(
            keys=[keys.batch(version), keys.records(version), keys.pages(version), keys.lock,
                  keys.batches],
            args=[version, status, now_iso(), orjson.dumps(error).decode(),
                  self.retention.grace_seconds, required]))

    def _retire_old_versions(self, keys: StreamKeys, published: int) -> None:
        """Let replaced versions beyond the newest `keep_versions` expire; trim history."""
        older = [_int(v) for v in self.connection.zrevrangebyscore(
            keys.batches, f"({published}", "-inf")]
        with self.connection.pipeline(transaction=False) as pipe:
            for version in older:
                pipe.hget(keys.batch(version), "status")
            statuses = pipe.execute()
        complete = [v for v, status in zip(older, statuses, strict=True) if status == "complete"]
        doomed = [keys.records(v) for v in complete[self.retention.keep_versions - 1:]]
        # Only the current version's digests are read (to diff the next batch).
        doomed += [keys.digests(v) for v in complete]
        # A change set can be as large as its batch: keep the newest few, not all history.
        doomed += [keys.changes(v) for v in complete[self.retention.change_history - 1:]]
        # A quarantined batch older than the published one can never be published now.
        doomed += [name for v, status in zip(older, statuses, strict=True)
                   if status == "quarantined"
                   for name in (keys.records(v), keys.digests(v), keys.changes(v))]
        trimmed = older[self.retention.history_length - 1:]
        doomed += [name for v in trimmed for name in (keys.batch(v), keys.changes(v))]
        self._expire_once(doomed)
        if trimmed:
            self.connection.zrem(keys.batches, *trimmed)

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
