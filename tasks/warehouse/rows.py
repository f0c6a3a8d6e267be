"""Rows for the warehouse: stored records and change sets turned into what dlt loads.

Every row carries the version whose delivery wrote it (``_ds_version``) and when that
version was published (``_ds_published_at``). A removed record becomes a row holding only
its key and ``_ds_deleted = true``, which dlt's ``hard_delete`` hint turns into a DELETE.
Records without a key are not delivered (a warehouse row needs its primary key), and of
records sharing a key the first in the version's order is, as the change set counts them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from app.records import get_path
from app.store.changesets import SEP

VERSION = "_ds_version"
PUBLISHED_AT = "_ds_published_at"
DELETED = "_ds_deleted"
# Rows handed to dlt at a time (each list is one item: dlt buffers them to disk).
CHUNK = 5000


@dataclass
class Stamp:
    """The version a delivery writes, and the count of rows it handed over.

    `moment` is `published_at` parsed once, in the time type dlt coerces fastest
    (`loader.timestamp`): dlt then converts nothing per row.
    """

    version: int
    published_at: str
    moment: datetime
    rows: int = 0

    def mark(self, record: dict[str, Any]) -> dict[str, Any]:
        record[VERSION] = self.version
        record[PUBLISHED_AT] = self.moment
        self.rows += 1
        return record


def key_row(key_json: str, key_path: str, stamp: Stamp) -> dict[str, Any]:
    """Return the row that deletes the record whose key (canonical JSON) is `key_json`."""
    row: dict[str, Any] = {}
    parts = key_path.split(".")
    leaf = row
    for part in parts[:-1]:
        leaf = leaf.setdefault(part, {})
    leaf[parts[-1]] = orjson.loads(key_json)
    row[DELETED] = True
    return stamp.mark(row)


def _record(member: str) -> dict[str, Any] | None:
    record = orjson.loads(member)
    return record if isinstance(record, dict) else None


def snapshot(chunks: Iterable[list[str]], key_path: str, stamp: Stamp
             ) -> Iterator[list[dict[str, Any]]]:
    """Yield every keyed record of a version (first of each key), CHUNK rows at a time."""
    seen: set[Any] = set()
    rows: list[dict[str, Any]] = []
    for chunk in chunks:
        for member in chunk:
            record = _record(member)
            key = None if record is None else get_path(record, key_path, None)
            if record is None or key is None:
                continue
            marker = (type(key), key) if isinstance(key, str | int | float) else \
                orjson.dumps(key, option=orjson.OPT_SORT_KEYS)
            if marker in seen:
                continue
            seen.add(marker)
            rows.append(stamp.mark(record))
        if len(rows) >= CHUNK:
            yield rows
            rows = []
    if rows:
        yield rows


def changes(members: Iterable[str], key_path: str, stamp: Stamp
            ) -> Iterator[list[dict[str, Any]]]:
    """Yield the rows of one change set ("key<TAB>op<TAB>record"), CHUNK rows at a time."""
    rows: list[dict[str, Any]] = []
    for member in members:
        key, op, body = member.split(SEP, 2)
        record = _record(body) if op != "r" else None
        if op == "r":
            rows.append(key_row(key, key_path, stamp))
        elif record is not None:
            rows.append(stamp.mark(record))
        if len(rows) >= CHUNK:
            yield rows
            rows = []
    if rows:
        yield rows
