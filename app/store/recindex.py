"""The record index of an incremental stream: a hash, record key -> member, of one version.

Merging an incremental batch onto version v must find, for each changed key, the member
v holds for it (to remove it, keep its position and tell added from updated), without
reading v whole. The index (`StreamKeys.index`) answers that: field ``k`` (the key as
canonical JSON) holds the record's canonical JSON (several joined by newlines, when v
holds duplicates of k), and the field ``""`` names the version it describes. There is
one index per stream: after a version publishes, `advance` moves it to that version by
patching only the changed keys; after a full batch, or when a crash left it describing
another version, `build` rebuilds it from the version's records, in bounded commands.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Iterator
from typing import Any

from redis import Redis

from app.store import scripts
from app.store.changesets import keyed_digest
from app.store.keys import StreamKeys

CHUNK = 2000
# The field that names the version an index describes (a record key is never empty).
MARK = ""
# A rebuild in progress lives this long without finishing, in ms.
BUILD_TTL_MS = 3_600_000


def _chunks(items: list[Any], size: int = CHUNK) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


class RecordIndex:
    """Reads, moves and rebuilds the record index of each incremental stream."""

    def __init__(self, connection: Redis, prefix: str) -> None:
        self.connection = connection
        self.prefix = prefix
        self._patch = connection.register_script(scripts.INDEX_PATCH)
        self._install = connection.register_script(scripts.INDEX_INSTALL)

    def version(self, stream: str) -> str | None:
        """Return the version the index describes ("<v>:patching" mid-move), or None."""
        raw = self.connection.hget(StreamKeys(self.prefix, stream).index, MARK)
        return None if raw is None else str(raw)

    def drop(self, stream: str) -> None:
        """Forget the index of a stream that is no longer incremental (freed lazily)."""
        self.connection.unlink(StreamKeys(self.prefix, stream).index)

    def lookup(self, stream: str, version: int, keys: list[str]
               ) -> dict[str, list[str]] | None:
        """Return key -> members of `version` for `keys` (absent keys left out).

        None when the index does not describe `version` (build it first).
        """
        name = StreamKeys(self.prefix, stream).index
        found: dict[str, list[str]] = {}
        for chunk in _chunks(keys):
            values: Any = self.connection.hmget(name, [MARK, *chunk])
            if values[0] != str(version):
                return None
            found.update({key: value.split("\n") for key, value in zip(chunk, values[1:],
                                                                        strict=True) if value})
        if not keys and self.version(stream) != str(version):
            return None
        return found

    def advance(self, stream: str, base: int, version: int, put: dict[str, str],
                removed: Iterable[str]) -> bool:
        """Move the index from `base` to `version`; False if it described neither."""
        name = StreamKeys(self.prefix, stream).index
        pairs = [item for pair in put.items() for item in pair]
        drops = list(removed)
        steps = list(_chunks(pairs, 2 * CHUNK)) or [[]]
        moved = True
        for number, chunk in enumerate(steps):
            last = number == len(steps) - 1
            moved = bool(self._patch(keys=[name], args=[
                base, version, "1" if last and not drops else "0", len(chunk) // 2, *chunk]))
            if not moved:
                return False
        for number, chunk in enumerate(_chunks(drops)):
            last = (number + 1) * CHUNK >= len(drops)
            moved = bool(self._patch(keys=[name], args=[base, version, "1" if last else "0",
                                                         0, *chunk]))
        return moved

    def build(self, stream: str, version: int, key_path: str) -> bool:
        """Rebuild the index of `version` from its records; False if a newer one won."""
        keys = StreamKeys(self.prefix, stream)
        staging = keys.index_build(secrets.token_hex(8))
        seen: set[str] = set()
        start = 0
        while True:
            members: Any = self.connection.zrange(keys.records(version), start,
                                                  start + CHUNK - 1)
            self._stage(staging, members, key_path, seen)
            if len(members) < CHUNK:
                break
            start += CHUNK
        self.connection.hset(staging, MARK, str(version))
        return bool(self._install(keys=[staging, keys.index], args=[version]))

    def _stage(self, staging: str, members: list[str], key_path: str,
               seen: set[str]) -> None:
        """Write one chunk of key -> member; a duplicate key appends its member."""
        fresh: dict[str, str] = {}
        twins: list[tuple[str, str]] = []
        for member in members:
            key = keyed_digest(member, key_path)[0]
            if key is None:
                continue
            if key in seen or key in fresh:
                twins.append((key, member))
            else:
                fresh[key] = member
        seen.update(fresh)
        with self.connection.pipeline(transaction=False) as pipe:
            if fresh:
                pipe.hset(staging, mapping=fresh)  # type: ignore[arg-type]
            pipe.pexpire(staging, BUILD_TTL_MS)
            pipe.execute()
        for key, member in twins:  # rare: a version holding two records of one key
            before: Any = self.connection.hget(staging, key)
            self.connection.hset(staging, key, f"{before}\n{member}" if before else member)
