"""The records `dedupe` keeping the last holds back: one per key, on disk, not in memory.

`HeldRecords` is a private temporary SQLite database (``sqlite3.connect("")``: a file in
the temporary directory, SQLITE_TMPDIR or TMPDIR, removed when it is closed) with one row
per key: the key, the position of the key's latest record in the batch and that record,
pickled (so any value a step before produced comes back as it was). SQLite keeps at most
`CACHE_KIB` of it in memory, so the worker's memory does not grow with the batch; the
disk holds one record per key. `last()` reads the records back in the order of each
key's last occurrence, `PAGE` at a time.
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


class HeldRecords:
    """The latest record of every key seen so far, in a temporary SQLite file."""

    def __init__(self) -> None:
        self.db = sqlite3.connect("", isolation_level=None)
        for pragma in (f"cache_size = -{CACHE_KIB}", "journal_mode = OFF",
                       "synchronous = OFF", "temp_store = FILE"):
            self.db.execute(f"PRAGMA {pragma}")
        self.db.execute("CREATE TABLE held (key BLOB PRIMARY KEY, pos INTEGER NOT NULL,"
                        " body BLOB NOT NULL) WITHOUT ROWID")
        self.position = 0

    def earlier(self, keys: list[bytes]) -> dict[bytes, bytes]:
        """Return {key: pickled record} of the keys already held (see `loads`)."""
        found: dict[bytes, bytes] = {}
        for start in range(0, len(keys), LOOKUP):
            part = keys[start:start + LOOKUP]
            marks = ",".join("?" * len(part))
            found.update(self.db.execute(
                f"SELECT key, body FROM held WHERE key IN ({marks})", part))
        return found

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
