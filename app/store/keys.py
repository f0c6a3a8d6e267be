"""The key layout of the batch store, in one place.

Every key of one stream carries the Redis Cluster hash tag ``{<stream>}`` so that each Lua
script touches one slot and the store runs on Redis Cluster unchanged. ``P`` is the prefix
(``KEY_PREFIX``, default ``ds``); ``s`` the stream name; ``v`` a batch version.

    P:names                zset    names of the defined streams, every score 0, so the
                                   names sort by bytes and page with ZRANGEBYLEX
    P:streams              set     (legacy) the names before P:names; moved once at start
    P:destinations         hash    destination name -> its definition, JSON
    P:dst:<d>:lock         string  token of the delivery writing destination d (single-writer
                                   types: duckdb); PX = delivery lock timeout
    P:{s}:def              string  the stream definition, JSON
    P:{s}:seq              string  last batch version handed out (INCR; monotonic per stream)
    P:{s}:lock             string  "<token>:<v>" of the batch in flight; PX = lease TTL, renewed
    P:{s}:fetch:<id>       string  version the fetch message <id> started; PX = one day
    P:{s}:control          string  lock serialising start/stop of the stream (redis-py Lock)
    P:{s}:current          string  version of the current published batch (the pointer)
    P:{s}:batches          zset    history index: member v, score v
    P:{s}:b:<v>            hash    batch metadata: status, counts, times, error (JSON)
    P:{s}:b:<v>:rec        zset    the batch's records: member canonical JSON, score order
    P:{s}:b:<v>:pages      hash    page -> records received (idempotent page receipt); a page
                                   sent in parts: "<page>/<part>" receipts, "<page>/parts" count
    P:{s}:b:<v>:dlv        hash    "<message>:<page>" -> deliveries (poison bound; `deliveries`)
    P:{s}:b:<v>:dig:<i>    hash    bucket i of `dig_buckets` (batch metadata): record key ->
                                   content digest of version v, for the keys whose SHA-1
                                   (first 7 hex digits) is i modulo the bucket count; small,
                                   so Redis keeps each compact (`digests`)
    P:{s}:b:<v>:dig:seen   hash    bucket i of the base version -> keys of the base that
                                   batch v holds (`pagediff`: where removed keys hide)
    P:{s}:b:<v>:dig        hash    (before buckets) record key -> digest; never written now
    P:{s}:b:<v>:chg        zset    v's change set against the version it replaced (`changes`)
    P:{s}:b:<v>:pchg       zset    the change set as the pages staged it, record by record
                                   (`pagediff`); renamed onto `chg` by the publish step
    P:{s}:b:<v>:ups        zset    an incremental batch's staged changes, set aside while the
                                   version is merged into `rec` (`incremental`)
    P:{s}:idx              hash    record key -> member(s) of one version of an incremental
                                   stream; field "" names the version (`recindex`)
    P:{s}:idx:<token>      hash    an index being rebuilt; renamed onto `idx` when whole
    P:{s}:refresh          string  "1": the next batch is a full one (POST .../refresh)
    P:{s}:rl:next          string  epoch ms of the next free slot of the shared request budget
    P:{s}:rl:until         string  epoch ms until which fetches wait (budget, 429, X-RateLimit)
    P:{s}:oauth            string  cached OAuth2 access token, encrypted; PX = its lifetime
    P:{s}:dst:<d>          hash    delivery state to destination d: delivered version, last
                                   delivery, last error, failures, retry time, reloads asked
    P:{s}:dst:<d>:lock     string  token of the delivery of s to d in flight; PX = lock timeout

Batch status moves: running -> complete | failed | abandoned | cancelled | quarantined,
and quarantined -> complete | discarded (by hand, or when a newer batch is quarantined or
published). Staging keys (`rec`, `pages`) of a running batch expire unless published, and
go at once when it ends unpublished; a replaced version keeps its `rec` for a grace period
(EXPIRE, never DEL), and the newest KEEP_VERSIONS stay readable. Every key of a stream
matches `StreamKeys.pattern` (deleting a stream deletes them all). RedBeat keeps its
schedule entries under its own prefix ``{redbeat}:``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Characters special to the glob patterns of SCAN MATCH.
_GLOB = re.compile(r"([*?\[\]\\])")


def names_key(prefix: str) -> str:
    """Return the key of the sorted set of stream names (lexicographic paging)."""
    return f"{prefix}:names"


def legacy_names_key(prefix: str) -> str:
    """Return the key of the plain set that held the names before `names_key`."""
    return f"{prefix}:streams"


def destinations_key(prefix: str) -> str:
    """Return the key of the hash of destination definitions."""
    return f"{prefix}:destinations"


def destination_lock_key(prefix: str, destination: str) -> str:
    """Return the key of the lock of a destination that one writer at a time may load."""
    return f"{prefix}:dst:{destination}:lock"


@dataclass(frozen=True)
class StreamKeys:
    """Builds every key of one stream; each key has exactly one builder."""

    prefix: str
    stream: str

    @property
    def _base(self) -> str:
        return f"{self.prefix}:{{{self.stream}}}"

    @property
    def pattern(self) -> str:
        """The SCAN MATCH pattern of every key of the stream (and of no other stream)."""
        return _GLOB.sub(r"\\\1", self._base) + ":*"

    @property
    def definition(self) -> str:
        return f"{self._base}:def"

    @property
    def seq(self) -> str:
        return f"{self._base}:seq"

    @property
    def lock(self) -> str:
        return f"{self._base}:lock"

    @property
    def control(self) -> str:
        return f"{self._base}:control"

    def fetch_receipt(self, task_id: str) -> str:
        return f"{self._base}:fetch:{task_id}"

    @property
    def current(self) -> str:
        return f"{self._base}:current"

    @property
    def batches(self) -> str:
        return f"{self._base}:batches"

    def batch(self, version: int) -> str:
        return f"{self._base}:b:{version}"

    def records(self, version: int) -> str:
        return f"{self._base}:b:{version}:rec"

    def pages(self, version: int) -> str:
        return f"{self._base}:b:{version}:pages"

    def deliveries(self, version: int) -> str:
        return f"{self._base}:b:{version}:dlv"

    def digests(self, version: int) -> str:
        """The name every digest bucket of `version` starts with (``<name>:<i>``)."""
        return f"{self._base}:b:{version}:dig"

    def digest_bucket(self, version: int, bucket: int) -> str:
        return f"{self._base}:b:{version}:dig:{bucket}"

    def digests_seen(self, version: int) -> str:
        return f"{self._base}:b:{version}:dig:seen"

    def changes(self, version: int) -> str:
        return f"{self._base}:b:{version}:chg"

    def page_changes(self, version: int) -> str:
        return f"{self._base}:b:{version}:pchg"

    def upserts(self, version: int) -> str:
        return f"{self._base}:b:{version}:ups"

    @property
    def index(self) -> str:
        return f"{self._base}:idx"

    def index_build(self, token: str) -> str:
        return f"{self._base}:idx:{token}"

    @property
    def refresh(self) -> str:
        return f"{self._base}:refresh"

    @property
    def rate_next(self) -> str:
        return f"{self._base}:rl:next"

    @property
    def rate_limited_until(self) -> str:
        return f"{self._base}:rl:until"

    @property
    def oauth_token(self) -> str:
        return f"{self._base}:oauth"

    def delivery(self, destination: str) -> str:
        return f"{self._base}:dst:{destination}"

    def delivery_lock(self, destination: str) -> str:
        return f"{self._base}:dst:{destination}:lock"
