"""The `filter` middleware: keep records for which a `config.condition.Condition` holds.

Conditions are data walked by `matches`, never code. Comparisons are strict about JSON
types: a boolean is not a number, a number never equals a string, and an ordering
(lt, le, gt, ge) between different types, or with a missing field, is false.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from app.records import get_path
from config.condition import Condition
from config.middleware import FilterSpec
from tasks.middleware.base import BatchContext, RecordMiddleware

ABSENT = object()
ORDERINGS: dict[str, Callable[[Any, Any], bool]] = {
    "lt": operator.lt, "le": operator.le, "gt": operator.gt, "ge": operator.ge}


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def same(left: Any, right: Any) -> bool:
    """Tell whether two JSON values are equal, a boolean never equalling a number."""
    return _kind(left) == _kind(right) and left == right


def compare(value: Any, op: str, target: Any) -> bool:
    """Apply one comparison operator; ABSENT is a missing field."""
    if op == "exists":
        return value is not ABSENT
    if op == "eq":
        return value is not ABSENT and same(value, target)
    if op == "ne":
        return value is ABSENT or not same(value, target)
    if op == "in":
        return value is not ABSENT and any(same(value, item) for item in target)
    if op == "not_in":
        return value is ABSENT or not any(same(value, item) for item in target)
    comparable = _kind(value) == _kind(target) and _kind(value) in ("number", "str")
    return comparable and ORDERINGS[op](value, target)


def matches(condition: Condition, record: dict[str, Any]) -> bool:
    """Tell whether `record` satisfies `condition`."""
    if condition.all_of is not None:
        return all(matches(part, record) for part in condition.all_of)
    if condition.any_of is not None:
        return any(matches(part, record) for part in condition.any_of)
    if condition.negated is not None:
        return not matches(condition.negated, record)
    assert condition.field is not None and condition.op is not None
    return compare(get_path(record, condition.field, ABSENT), condition.op, condition.value)


class Filter(RecordMiddleware):
    type = "filter"

    def __init__(self, spec: FilterSpec, key_path: str) -> None:
        super().__init__(key_path)
        self.condition = spec.condition
        self.reason = f"condition is false: {spec.condition.model_dump_json()}"

    def one(self, record: dict[str, Any], context: BatchContext) -> dict[str, Any] | None:
        if matches(self.condition, record):
            return record
        self.tally.drop(record, self.reason, context)
        return None
