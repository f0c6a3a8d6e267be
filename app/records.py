"""Records and the values in them: canonical JSON, sort scores, dotted paths, ISO times.

Every process reads and writes records through these: the worker encodes each record as
canonical JSON (the member stored in a version's sorted set) with its score; the store,
the API and the middleware read fields by dotted path; every time data-streams writes
(batch metadata, logs, schedules, rate limits) is ISO-8601 UTC with milliseconds and a Z.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import orjson

from app.exceptions import BadRecord

MISSING = object()

# Scores of upstream order: page * PAGE_STRIDE + index keeps pages apart and exact in a double.
PAGE_STRIDE = 1_000_000
LAST = float("inf")


def encode(record: Any) -> str:
    """Return the record as canonical JSON (sorted keys), the member stored in Redis."""
    return orjson.dumps(record, option=orjson.OPT_SORT_KEYS).decode()


def order_score(record: Any, order_by: str) -> float:
    """Return the numeric or ISO-time value at `order_by` as a score; missing sorts last.

    Raises ValueError for a value that is there but no finite number or time ("NaN",
    infinite, text, an object): a record that cannot be ordered is an error, not a guess.
    """
    value = get_path(record, order_by, None)
    if value is None:
        return LAST
    try:
        score = value_score(value)
    except OverflowError:  # an integer too large for a double
        score = None
    if score is None or not math.isfinite(score):
        raise ValueError(f"order_by {order_by!r} is {_shown(value)}, not a finite number or "
                         "ISO-8601 time")
    return score


def _shown(value: Any) -> str:
    """Return a value for an error message, cut to a readable length."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def value_score(value: Any) -> float | None:
    """Return a number, numeric string or ISO-8601 time as a score; None if it is none."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
        try:
            return datetime.fromisoformat(value).timestamp()
        except ValueError:
            return None
    return None


def to_entries(records: list[Any], page: int, order_by: str | None
               ) -> list[tuple[float, str]]:
    """Return the (score, member) entries of one page's records.

    Raises BadRecord naming the page and the position (from 1) of a record whose
    `order_by` value cannot be a score.
    """
    if order_by:
        entries = []
        for position, record in enumerate(records, start=1):
            try:
                entries.append((order_score(record, order_by), encode(record)))
            except ValueError as exc:
                raise BadRecord(page, position, str(exc)) from None
        return entries
    base = page * PAGE_STRIDE
    return [(float(base + index), encode(record)) for index, record in enumerate(records)]


def get_path(document: Any, path: str, default: Any = MISSING) -> Any:
    """Return the value at dotted `path` ('' is the document itself), or `default`.

    Without a default, a missing step raises KeyError naming the path.
    """
    value = document
    if path:
        for step in path.split("."):
            if isinstance(value, dict) and step in value:
                value = value[step]
            elif isinstance(value, list) and step.isdigit() and int(step) < len(value):
                value = value[int(step)]
            elif default is not MISSING:
                return default
            else:
                raise KeyError(path)
    return value


def iso(moment: datetime) -> str:
    """Format a time as ISO-8601 UTC with milliseconds and a Z (naive means UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def iso_at(epoch_seconds: float) -> str:
    """Format a Unix time (seconds) like `iso`."""
    return iso(datetime.fromtimestamp(epoch_seconds, UTC))


def now_iso() -> str:
    """Return the current time formatted like `iso`."""
    return iso(datetime.now(UTC))


def parse_time(raw: object) -> datetime | None:
    """Return an ISO-8601 time (as `iso` writes it, or any other) as aware UTC, or None."""
    if not isinstance(raw, str) or not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
