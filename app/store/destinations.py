"""Destination definitions: one hash, destination name -> definition as JSON.

Layout in `keys` (``P:destinations``). Definitions are validated by
`config.destinations.DestinationDefinition` before they are written, and hold no secret
(credentials are named by environment variable), so any of them can be listed.
"""

from __future__ import annotations

import orjson
from redis import Redis

from app.store.keys import destinations_key
from config.destinations import DestinationDefinition


class Destinations:
    """Reads and writes destination definitions."""

    def __init__(self, connection: Redis, prefix: str) -> None:
        self.connection = connection
        self.key = destinations_key(prefix)

    def put(self, name: str, definition: DestinationDefinition) -> bool:
        """Create or replace a definition; return True if the destination is new."""
        return bool(self.connection.hset(self.key, name, definition.model_dump_json()))

    def get(self, name: str) -> DestinationDefinition | None:
        """Return the definition of `name`, or None when it is not defined."""
        raw = self.connection.hget(self.key, name)
        if raw is None:
            return None
        return DestinationDefinition.model_validate(orjson.loads(str(raw)))

    def all(self) -> dict[str, DestinationDefinition]:
        """Return every definition by name, sorted by name."""
        raw: dict[str, str] = self.connection.hgetall(self.key)  # type: ignore[assignment]
        return {name: DestinationDefinition.model_validate(orjson.loads(raw[name]))
                for name in sorted(raw)}

    def delete(self, name: str) -> bool:
        """Forget a definition; return True if it existed."""
        return bool(self.connection.hdel(self.key, name))
