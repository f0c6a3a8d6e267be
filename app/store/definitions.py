"""Stream definitions: one JSON string per stream plus a sorted set of names.

One string per stream and the sorted set of names, every score 0 (layout in `keys`), so
a page of names after a given one is one ZRANGEBYLEX, O(log N + page), however many
streams there are. Definitions are validated by `config.streams.StreamDefinition` before
they are written; what is stored is the validated model, so a reader never sees an
invalid one. The index is one key and each definition lives in its stream's slot, so on a
Redis Cluster they are two writes, ordered so the index never names a stream without a
definition (a retried PUT or DELETE repairs an interrupted one).
"""

from __future__ import annotations

from typing import Any

import orjson
from redis import Redis

from app.store.keys import StreamKeys, legacy_names_key, names_key
from config.streams import StreamDefinition


class Definitions:
    """Reads and writes stream definitions."""

    def __init__(self, connection: Redis, prefix: str) -> None:
        self.connection = connection
        self.prefix = prefix

    def put(self, name: str, definition: StreamDefinition) -> bool:
        """Create or replace a definition; return True if the stream is new."""
        self.connection.set(StreamKeys(self.prefix, name).definition,
                            definition.model_dump_json())
        return bool(self.connection.zadd(names_key(self.prefix), {name: 0}))

    def get(self, name: str) -> StreamDefinition | None:
        """Return the definition of `name`, or None when it is not defined."""
        raw = self.connection.get(StreamKeys(self.prefix, name).definition)
        if raw is None:
            return None
        return StreamDefinition.model_validate(orjson.loads(raw))

    def raw_many(self, names: list[str]) -> dict[str, dict[str, Any]]:
        """Return the stored JSON of each defined name, unvalidated (one round trip)."""
        if not names:
            return {}
        bodies: Any = self.connection.mget(
            [StreamKeys(self.prefix, name).definition for name in names])
        return {name: orjson.loads(body) for name, body in zip(names, bodies, strict=True)
                if body is not None}

    def names(self) -> list[str]:
        """Return the names of every defined stream, sorted."""
        return [str(name) for name in self.connection.zrange(names_key(self.prefix), 0, -1)]

    def names_after(self, after: str | None, count: int) -> list[str]:
        """Return up to `count` names that sort after `after` (from the first if None)."""
        low = "-" if after is None else f"({after}"
        found: Any = self.connection.zrangebylex(names_key(self.prefix), low, "+",
                                                 start=0, num=count)
        return [str(name) for name in found]

    def count(self) -> int:
        """Return how many streams are defined."""
        return int(self.connection.zcard(names_key(self.prefix)))

    def delete(self, name: str) -> bool:
        """Forget a definition (its batches stay until they expire); return True if it was."""
        self.connection.zrem(names_key(self.prefix), name)
        return bool(self.connection.delete(StreamKeys(self.prefix, name).definition))

    def adopt_legacy_names(self) -> int:
        """Move the names of the older plain set into the sorted set; return how many."""
        legacy = legacy_names_key(self.prefix)
        members: Any = self.connection.smembers(legacy)
        if members:
            self.connection.zadd(names_key(self.prefix), dict.fromkeys(members, 0))
        self.connection.delete(legacy)
        return len(members)
