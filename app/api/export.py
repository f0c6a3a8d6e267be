"""Streamed exports of a whole version as NDJSON or CSV, read from Redis in chunks.

The web process holds one chunk (`EXPORT_CHUNK` records) at a time, whatever the size of
the version. CSV needs its columns before the first row, so it reads the version twice:
once for the union of the flattened field names, once for the rows.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import orjson

from app.store.cursors import Window
from app.store.reader import Reader

EXPORT_CHUNK = 2000
NDJSON = "application/x-ndjson"
CSV = "text/csv"


def ndjson(reader: Reader, stream: str, version: int, window: Window) -> Iterator[bytes]:
    """Yield the records one JSON document per line."""
    for members in reader.export(stream, version, window, EXPORT_CHUNK):
        yield ("\n".join(members) + "\n").encode()


def flatten(record: Any, prefix: str = "") -> dict[str, Any]:
    """Return a record as flat columns: nested objects as dotted names, lists as JSON."""
    if not isinstance(record, dict):
        return {prefix or "value": record}
    flat: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and value:
            flat.update(flatten(value, name))
        else:
            flat[name] = value
    return flat


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def csv_rows(reader: Reader, stream: str, version: int, window: Window) -> Iterator[bytes]:
    """Yield a header of every flattened column, then one row per record."""
    columns: dict[str, None] = {}
    for members in reader.export(stream, version, window, EXPORT_CHUNK):
        for member in members:
            columns.update(dict.fromkeys(flatten(orjson.loads(member))))
    names = list(columns)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(names)
    yield buffer.getvalue().encode()
    for members in reader.export(stream, version, window, EXPORT_CHUNK):
        buffer.seek(0)
        buffer.truncate()
        for member in members:
            flat = flatten(orjson.loads(member))
            writer.writerow([_cell(flat.get(name)) for name in names])
        yield buffer.getvalue().encode()
