"""Stream definitions: one JSON string per stream plus a set of names.

The set of names and one string per stream (layout in `keys`). Definitions are validated
by `config.streams.StreamDefinition` before they are written; what is stored is the
validated model, so a reader never sees an invalid one.
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
        body = definition.model_dump_json()
        with self.connection.pipeline() as pipe:
            pipe.set(StreamKeys(self.prefix, name).definition, body)
            pipe.sadd(streams_key(self.prefix), name)
            _, added = pipe.execute()
        return bool(added)

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
        with self.connection.pipeline() as pipe:
            pipe.delete(StreamKeys(self.prefix, name).definition)
            pipe.srem(streams_key(self.prefix), name)
            removed, _ = pipe.execute()
        return bool(removed)
