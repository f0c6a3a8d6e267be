"""Records into store entries: canonical JSON members and their sort scores."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from app.paths import get_path

# Scores of upstream order: page * PAGE_STRIDE + index keeps pages apart and exact in a double.
PAGE_STRIDE = 1_000_000
LAST = float("inf")


def encode(record: Any) -> str:
    """Return the record as canonical JSON (sorted keys), the member stored in Redis."""
    return orjson.dumps(record, option=orjson.OPT_SORT_KEYS).decode()


def order_score(record: Any, order_by: str) -> float:
    """Return the numeric or ISO-time value at `order_by` as a score; missing sorts last."""
    score = value_score(get_path(record, order_by, None))
    return LAST if score is None else score


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
    """Return the (score, member) entries of one page's records."""
    if order_by:
        return [(order_score(record, order_by), encode(record)) for record in records]
    base = page * PAGE_STRIDE
    return [(float(base + index), encode(record)) for index, record in enumerate(records)]
