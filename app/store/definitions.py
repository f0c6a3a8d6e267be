"""Stream definitions: one JSON string per stream plus a set of names.

The set of names and one string per stream (layout in `keys`). Definitions are validated
by `config.streams.StreamDefinition` before they are written; what is stored is the
validated model, so a reader never sees an invalid one. The set is one key and each
definition lives in its stream's slot, so on a Redis Cluster they are two writes, ordered
so the set never names a stream without a definition (a retried PUT or DELETE repairs an
interrupted one).
"""

from __future__ import annotations

import orjson
from redis import Redis

from app.store.keys import StreamKeys, streams_key
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
        return bool(self.connection.sadd(streams_key(self.prefix), name))

    def get(self, name: str) -> StreamDefinition | None:
        """Return the definition of `name`, or None when it is not defined."""
        raw = self.connection.get(StreamKeys(self.prefix, name).definition)
        if raw is None:
            return None
        return StreamDefinition.model_validate(orjson.loads(raw))

    def names(self) -> list[str]:
        """Return the names of every defined stream, sorted."""
        return sorted(str(name) for name in self.connection.smembers(streams_key(self.prefix)))

    def delete(self, name: str) -> bool:
        """Forget a definition (its batches stay until they expire); return True if it was."""
        self.connection.srem(streams_key(self.prefix), name)
        return bool(self.connection.delete(StreamKeys(self.prefix, name).definition))
