"""Field-shaping middleware: select, drop, rename, add_fields, flatten.

Field names are dotted paths into nested objects ("address.city"). Each middleware
returns new record objects (copied along the paths it changes), never editing its input.
"""

from __future__ import annotations

from typing import Any

from app.records import get_path
from config.middleware import AddFieldsSpec, DropSpec, FlattenSpec, RenameSpec, SelectSpec
from tasks.middleware.base import BatchContext, RecordMiddleware

Obj = dict[str, Any]
ABSENT = object()


def put_path(record: Obj, path: str, value: Any) -> Obj:
    """Return a copy of `record` with `value` at dotted `path` (objects made as needed)."""
    head, _, rest = path.partition(".")
    copy = dict(record)
    if not rest:
        copy[head] = value
    else:
        inner = copy.get(head)
        copy[head] = put_path(inner if isinstance(inner, dict) else {}, rest, value)
    return copy


def remove_path(record: Obj, path: str) -> Obj:
    """Return a copy of `record` without dotted `path` (unchanged if it is missing)."""
    head, _, rest = path.partition(".")
    if head not in record or (rest and not isinstance(record[head], dict)):
        return record
    copy = dict(record)
    if rest:
        copy[head] = remove_path(copy[head], rest)
    else:
        del copy[head]
    return copy


class Select(RecordMiddleware):
    type = "select"

    def __init__(self, spec: SelectSpec, key_path: str) -> None:
        super().__init__(key_path)
        self.fields = spec.fields

    def one(self, record: Obj, context: BatchContext) -> Obj | None:
        kept: Obj = {}
        for path in self.fields:
            value = get_path(record, path, ABSENT)
            if value is not ABSENT:
                kept = put_path(kept, path, value)
        return kept


class Drop(RecordMiddleware):
    type = "drop"

    def __init__(self, spec: DropSpec, key_path: str) -> None:
        super().__init__(key_path)
        self.fields = spec.fields

    def one(self, record: Obj, context: BatchContext) -> Obj | None:
        for path in self.fields:
            record = remove_path(record, path)
        return record


class Rename(RecordMiddleware):
    type = "rename"

    def __init__(self, spec: RenameSpec, key_path: str) -> None:
        super().__init__(key_path)
        self.fields = spec.fields

    def one(self, record: Obj, context: BatchContext) -> Obj | None:
        for old, new in self.fields.items():
            value = get_path(record, old, ABSENT)
            if value is not ABSENT:
                record = put_path(remove_path(record, old), new, value)
        return record


class AddFields(RecordMiddleware):
    type = "add_fields"

    def __init__(self, spec: AddFieldsSpec, key_path: str) -> None:
        super().__init__(key_path)
        self.constants = spec.fields
        self.context_fields = tuple(spec.context)

    def one(self, record: Obj, context: BatchContext) -> Obj | None:
        values = {"_fetched_at": context.fetched_at, "_batch_version": context.version,
                  "_source_url": context.source_url, "_stream": context.stream,
                  "_page": context.page}
        record = dict(record)
        for path, value in self.constants.items():
            record = put_path(record, path, value)
        for name in self.context_fields:
            record[name] = values[name]
        return record


class Flatten(RecordMiddleware):
    type = "flatten"

    def __init__(self, spec: FlattenSpec, key_path: str) -> None:
        super().__init__(key_path)
        self.max_depth = spec.max_depth
        self.separator = spec.separator

    def one(self, record: Obj, context: BatchContext) -> Obj | None:
        flat: Obj = {}
        for column, value in self._columns(record, "", 0):
            if column in flat:
                self.tally.fail(record, f"column {column!r} collides; the last value won",
                                context)
            flat[column] = value
        return flat

    def _columns(self, obj: Obj, prefix: str, depth: int) -> list[tuple[str, Any]]:
        columns: list[tuple[str, Any]] = []
        for name, value in obj.items():
            column = f"{prefix}{self.separator}{name}" if prefix else name
            if isinstance(value, dict) and value and depth < self.max_depth:
                columns += self._columns(value, column, depth + 1)
            else:
                columns.append((column, value))
        return columns
