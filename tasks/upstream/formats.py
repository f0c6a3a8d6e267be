"""Response formats: a page's bytes into records, for `source.format` json, jsonl and csv.

- ``json``: one JSON document; the records are found at ``records_path``.
- ``jsonl`` (JSON Lines, NDJSON): one JSON value per non-blank line; each is a record.
- ``csv``: a header row, then one record per row, every value a string (a ``cast``
  middleware converts them); a row with more or fewer fields than the header fails.

The size cap (``max_response_bytes``) is enforced while the body streams in, before any of
this runs (`request`). A body that is not what the format expects fails the batch naming
the record (line) and the answer's Content-Type, with the start of the body.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import orjson

from app.exceptions import UpstreamError
from config.source import Source
from tasks.upstream.reasons import excerpt

ACCEPT = {"json": "application/json",
          "jsonl": "application/x-ndjson, application/jsonl, application/json;q=0.5",
          "csv": "text/csv, text/plain;q=0.5"}


def parse(source: Source, raw: bytes, content_type: str, status: int | None = None) -> Any:
    """Return the parsed page: the JSON document, or the list of records (jsonl, csv)."""
    if source.format == "jsonl":
        return _json_lines(raw, content_type, status)
    if source.format == "csv":
        return _csv(raw, source.csv.delimiter if source.csv else ",", content_type, status)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise UpstreamError("invalid_json", "upstream answer is not JSON"
                            f"{_shown(content_type, raw)}", status=status) from None


def _shown(content_type: str, raw: bytes) -> str:
    """Return ' (Content-Type ...): <start of the body>' for an error message."""
    start = excerpt(raw[:2048], content_type)
    return f" (Content-Type {content_type or 'none'})" + (f": {start}" if start else "")


def _json_lines(raw: bytes, content_type: str, status: int | None) -> list[Any]:
    records = []
    for number, line in enumerate(raw.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            records.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            raise UpstreamError("invalid_json", f"record {len(records) + 1} (line {number}) "
                                f"is not JSON{_shown(content_type, line)}",
                                status=status) from None
    return records


def _csv(raw: bytes, delimiter: str, content_type: str, status: int | None
         ) -> list[dict[str, str]]:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UpstreamError("invalid_csv", f"the CSV is not UTF-8 (byte {exc.start})"
                            f"{_shown(content_type, raw)}", status=status) from None
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    records: list[dict[str, str]] = []
    try:
        header = next(reader, None)
        if header is None:
            return records
        if len(set(header)) != len(header) or any(not name for name in header):
            raise UpstreamError("invalid_csv", "the CSV header has an empty or repeated "
                                f"column name: {header[:20]!r}", status=status)
        for row in reader:
            if not row:
                continue
            if len(row) != len(header):
                raise UpstreamError("invalid_csv", f"record {len(records) + 1} (line "
                                    f"{reader.line_num}) has {len(row)} fields, the header "
                                    f"{len(header)}", status=status)
            records.append(dict(zip(header, row, strict=True)))
    except csv.Error as exc:
        raise UpstreamError("invalid_csv", f"record {len(records) + 1} (line "
                            f"{reader.line_num}) is not valid CSV: {exc}"
                            f"{_shown(content_type, raw)}", status=status) from None
    return records
