"""The `cast` middleware: convert field values to int, float, bool, string or datetime.

A missing field or a null is left alone. A value that cannot be cast follows the
spec's `on_error`: drop the record, set the value to null, keep it as it is (each
counted), or fail the whole batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson

from app.records import get_path
from config.middleware import CastSpec
from tasks.middleware.base import BatchContext, RecordMiddleware
from tasks.middleware.fields import put_path

ABSENT = object()
TRUE = {"true", "t", "yes", "y", "1", "on"}
FALSE = {"false", "f", "no", "n", "0", "off"}
# Epoch numbers above this are milliseconds (year 5138 in seconds).
EPOCH_MS_ABOVE = 1e11


def to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("a boolean is not an integer")
    number = float(value.strip()) if isinstance(value, str) else value
    if isinstance(number, int):
        return number
    if isinstance(number, float) and number.is_integer():
        return int(number)
    raise ValueError("not a whole number")


def to_float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError("not a number")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError("not a finite number")
    return number


def to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower() if isinstance(value, str) else None
    if text in TRUE or text in FALSE:
        return text in TRUE
    raise ValueError("not a boolean")


def to_string(value: Any) -> str:
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def to_datetime(value: Any) -> str:
    """Return ISO-8601; epoch numbers are UTC, naive strings stay naive."""
    if isinstance(value, bool):
        raise ValueError("a boolean is not a time")
    if isinstance(value, int | float):
        seconds = value / 1000 if value > EPOCH_MS_ABOVE else value
        parsed = datetime.fromtimestamp(seconds, tz=UTC)
    elif isinstance(value, str):
        parsed = datetime.fromisoformat(value.strip())
    else:
        raise ValueError("not a time")
    return parsed.isoformat().replace("+00:00", "Z")


CASTS: dict[str, Callable[[Any], Any]] = {
    "int": to_int, "float": to_float, "bool": to_bool, "string": to_string,
    "datetime": to_datetime}


class Cast(RecordMiddleware):
    type = "cast"

    def __init__(self, spec: CastSpec, key_path: str) -> None:
        super().__init__(key_path)
        self.fields = spec.fields
        self.on_error = spec.on_error

    def one(self, record: dict[str, Any], context: BatchContext) -> dict[str, Any] | None:
        for path, kind in self.fields.items():
            value = get_path(record, path, ABSENT)
            if value is ABSENT or value is None:
                continue
            try:
                record = put_path(record, path, CASTS[kind](value))
            except (ValueError, TypeError, OverflowError, OSError) as exc:
                reason = f"cannot cast {path}={_show(value)} to {kind}: {exc}"
                if self.on_error == "fail":
                    raise ValueError(reason) from None
                if self.on_error == "drop":
                    self.tally.drop(record, reason, context)
                    return None
                self.tally.fail(record, reason, context)
                if self.on_error == "null":
                    record = put_path(record, path, None)
        return record


def _show(value: Any) -> str:
    text = orjson.dumps(value).decode()
    return text if len(text) <= 60 else text[:57] + "..."
