"""The batch store: every Redis key and Lua script of data-streams, behind one `Store`.

The key layout is written once, in `app.store.keys`; every Lua script in
`app.store.scripts`. `build_store` is the one place that builds the store's parts, each
sharing one Redis client and the key prefix (``KEY_PREFIX``). The store speaks Redis, not
HTTP: it raises the errors of `app.exceptions` named for what happened (`InvalidCursor`,
`VersionExpired`, ...), which the API maps to statuses at its boundary.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from redis import Redis

from app.store.changefeed import ChangeFeed
from app.store.changesets import ChangeSets
from app.store.definitions import Definitions
from app.store.deliveries import Deliveries
from app.store.delivery_state import DeliveryStates
from app.store.destinations import Destinations
from app.store.incremental import FullRefresh, Merger
from app.store.keys import StreamKeys
from app.store.locks import StreamLocks
from app.store.oauth_tokens import TokenCache
from app.store.pagediff import PageDiffs
from app.store.ratelimit import RateLimits
from app.store.reader import Reader
from app.store.recindex import RecordIndex
from app.store.replication import Replicas, has_replicas
from app.store.writer import BatchWriter, Retention
from config import defaults


@dataclass(frozen=True)
class Store:
    """Every part of the store, sharing one Redis client and one key prefix."""

    connection: Redis
    prefix: str
    definitions: Definitions
    locks: StreamLocks
    writer: BatchWriter
    reader: Reader
    change_sets: ChangeSets
    page_diffs: PageDiffs
    change_feed: ChangeFeed
    deliveries: Deliveries
    rate_limits: RateLimits
    oauth_tokens: TokenCache
    destinations: Destinations
    delivery_states: DeliveryStates
    record_index: RecordIndex
    merger: Merger
    full_refresh: FullRefresh

    def purge(self, stream: str) -> int:
        """Delete every key of `stream` (its hash tag under the prefix), except a definition
        saved again meanwhile; return how many went. Run after its definition is deleted."""
        keys = StreamKeys(self.prefix, stream)
        doomed = [name for name in self.connection.scan_iter(keys.pattern, count=1000)
                  if name != keys.definition]
        for start in range(0, len(doomed), 1000):
            self.connection.unlink(*doomed[start:start + 1000])
        return len(doomed)


def build_store(connection: Redis, config: Mapping[str, Any]) -> Store:
    """Build every part of the store from a client and the app's settings."""
    prefix = config["KEY_PREFIX"]
    lease_ms = config["LEASE_TTL_SECONDS"] * 1000
    definitions = Definitions(connection, prefix)
    retention = Retention(keep_versions=config["KEEP_VERSIONS"],
                          grace_seconds=config["GRACE_SECONDS"],
                          history_length=config["HISTORY_LENGTH"],
                          change_history=config["CHANGE_HISTORY"],
                          staging_ttl_ms=config["STAGING_SECONDS"] * 1000,
                          lock_ttl_ms=lease_ms)
    index = RecordIndex(connection, prefix)
    replicas = Replicas(connection if has_replicas(connection) else None,
                        config.get("REPLICA_WAIT_MS", defaults.REPLICA_WAIT_MS))
    return Store(connection=connection, prefix=prefix,
                 definitions=definitions,
                 locks=StreamLocks(connection, prefix, lease_ms, replicas),
                 writer=BatchWriter(connection, prefix, retention, definitions, replicas),
                 reader=Reader(connection, prefix),
                 change_sets=ChangeSets(connection, prefix, retention.staging_ttl_ms),
                 page_diffs=PageDiffs(connection, prefix, retention.staging_ttl_ms),
                 change_feed=ChangeFeed(connection, prefix),
                 deliveries=Deliveries(connection, prefix, retention.staging_ttl_ms),
                 rate_limits=RateLimits(connection, prefix),
                 oauth_tokens=TokenCache(connection, prefix),
                 destinations=Destinations(connection, prefix),
                 delivery_states=DeliveryStates(connection, prefix),
                 record_index=index, merger=Merger(connection, prefix, retention, index),
                 full_refresh=FullRefresh(connection, prefix))
