"""What `dedupe` remembers across the pages of a batch, on disk rather than in memory.

Keeping the last, `HeldRecords` holds the latest record of each key; keeping the first,
`SeenKeys` the keys already sent. Each is a private temporary SQLite database
(``sqlite3.connect("")``: a file in the temporary directory, SQLITE_TMPDIR or TMPDIR,
removed when it is closed) of one row per key; SQLite keeps at most `CACHE_KIB` of it in
memory, so the worker's memory does not grow with the batch. Held records are pickled
(any value a step before produced comes back as it was), and `HeldRecords.last()` reads
them back in the order of each key's last occurrence, `PAGE` at a time.
"""

from __future__ import annotations

import pickle
import sqlite3
from collections.abc import Iterator
from typing import Any

# Memory SQLite may use for its page cache, in KiB (the rest stays in the file).
CACHE_KIB = 8 * 1024
PAGE = 1000
# Most keys looked up in one statement (SQLite allows 32,766 parameters).
LOOKUP = 500


def _temporary() -> sqlite3.Connection:
    """Open a private temporary database whose page cache is at most `CACHE_KIB`."""
    db = sqlite3.connect("", isolation_level=None)
    for pragma in (f"cache_size = -{CACHE_KIB}", "journal_mode = OFF", "synchronous = OFF",
                   "temp_store = FILE"):
        db.execute(f"PRAGMA {pragma}")
    return db


def _found(db: sqlite3.Connection, query: str, keys: list[bytes]) -> Iterator[Any]:
    """Run `query` (a SELECT ... WHERE key IN ({})) over `keys`, `LOOKUP` at a time."""
    for start in range(0, len(keys), LOOKUP):
        part = keys[start:start + LOOKUP]
        yield from db.execute(query.format(",".join("?" * len(part))), part)


class SeenKeys:
    """The keys seen so far, in a temporary SQLite file."""

    def __init__(self) -> None:
        self.db = _temporary()
        self.db.execute("CREATE TABLE seen (key BLOB PRIMARY KEY) WITHOUT ROWID")

    def known(self, keys: list[bytes]) -> set[bytes]:
        """Return those of `keys` already added."""
        return {key for (key,) in _found(self.db, "SELECT key FROM seen WHERE key IN ({})",
                                         keys)}

    def add(self, keys: list[bytes]) -> None:
        """Add keys not added before."""
        self.db.execute("BEGIN")
        self.db.executemany("INSERT INTO seen (key) VALUES (?)", ((key,) for key in keys))
        self.db.execute("COMMIT")


class HeldRecords:
    """The latest record of every key seen so far, in a temporary SQLite file."""

    def __init__(self) -> None:
        self.db = _temporary()
        self.db.execute("CREATE TABLE held (key BLOB PRIMARY KEY, pos INTEGER NOT NULL,"
                        " body BLOB NOT NULL) WITHOUT ROWID")
        self.position = 0

    def earlier(self, keys: list[bytes]) -> dict[bytes, bytes]:
        """Return {key: pickled record} of the keys already held (see `loads`)."""
        return dict(_found(self.db, "SELECT key, body FROM held WHERE key IN ({})", keys))

    def put(self, records: list[tuple[bytes, Any]]) -> None:
        """Hold each (key, record), replacing what an earlier record of the key left."""
        rows = []
        for key, record in records:
            self.position += 1
            rows.append((key, self.position, pickle.dumps(record, pickle.HIGHEST_PROTOCOL)))
        self.db.execute("BEGIN")
        self.db.executemany("INSERT INTO held (key, pos, body) VALUES (?, ?, ?) ON CONFLICT"
                            " (key) DO UPDATE SET pos = excluded.pos, body = excluded.body",
                            rows)
        self.db.execute("COMMIT")

    def replaced(self) -> int:
        """Return how many records put were replaced by a later one of their key."""
        (rows,) = self.db.execute("SELECT count(*) FROM held").fetchone()
        return self.position - int(rows)

    def last(self) -> Iterator[Any]:
        """Yield the held records in the order of each key's last occurrence, then close."""
        try:
            self.db.execute("CREATE INDEX held_pos ON held (pos)")
            cursor = self.db.execute("SELECT body FROM held ORDER BY pos")
            while rows := cursor.fetchmany(PAGE):
                yield from (pickle.loads(body) for (body,) in rows)
        finally:
            self.close()

    def close(self) -> None:
        """Drop the file (it goes when the worker ends, too)."""
        self.db.close()


def loads(body: bytes) -> Any:
    """Return a record as `put` pickled it."""
    return pickle.loads(body)
