"""Compact record schemas and the drift between two of them (pure functions, no I/O).

A schema maps each field (dotted path into nested objects, at most `MAX_DEPTH` deep) to
the JSON types seen there and whether it may be null or missing:

    {"records": 120, "fields": {"id": {"types": ["integer"], "nullable": false},
                                "price": {"types": ["number", "string"], "nullable": true}}}

The worker builds one over every record of a batch (`SchemaBuilder`) and sends it with
the batch totals; the publish step compares it with the published batch's
(`app.publish.drift`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

MAX_DEPTH = 4
MAX_FIELDS = 1000
ROOT = "$"

# A group of flat records with the same field names: the names, how many, each's types.
Shape = tuple[tuple[str, ...], int, list[set[type]]]


def json_type(value: Any) -> str:
    """Return the JSON type name of a decoded JSON value."""
    return _type_name(type(value))


def _type_name(kind: type) -> str:
    """Return the JSON type name of the values of Python type `kind`."""
    if kind is type(None):
        return "null"
    if issubclass(kind, bool):
        return "boolean"
    if issubclass(kind, int):
        return "integer"
    if issubclass(kind, float):
        return "number"
    if issubclass(kind, str):
        return "string"
    if issubclass(kind, list):
        return "array"
    return "object"


class SchemaBuilder:
    """Accumulates the schema of records page by page."""

    def __init__(self) -> None:
        self.records = 0
        self.types: dict[str, set[str]] = {}
        self.present: dict[str, int] = {}
        self.objects: dict[str, int] = {}

    def add(self, records: list[Any]) -> None:
        """Fold a page of records into the schema."""
        shapes = _flat_shapes(records)
        if shapes is not None:
            self._add_shapes(shapes)
            return
        for record in records:
            self.records += 1
            if isinstance(record, dict):
                self._walk(record, "", 1)
            else:
                self._note(ROOT, record)

    def _walk(self, obj: dict[str, Any], prefix: str, depth: int) -> None:
        for name, value in obj.items():
            path = f"{prefix}{name}"
            if not self._note(path, value):
                continue
            if isinstance(value, dict) and depth < MAX_DEPTH:
                self.objects[path] = self.objects.get(path, 0) + 1
                self._walk(value, path + ".", depth + 1)

    def _add_shapes(self, shapes: list[Shape]) -> None:
        """Fold flat records grouped by shape, as if added one at a time."""
        for names, count, kinds in shapes:
            self.records += count
            for name, column in zip(names, kinds, strict=True):
                self._note_types(name, {_type_name(kind) for kind in column}, count)

    def _note(self, path: str, value: Any) -> bool:
        return self._note_types(path, (json_type(value),), 1)

    def _note_types(self, path: str, names: Iterable[str], count: int) -> bool:
        if path not in self.types and len(self.types) >= MAX_FIELDS:
            return False
        self.types.setdefault(path, set()).update(names)
        self.present[path] = self.present.get(path, 0) + count
        return True

    def result(self) -> dict[str, Any]:
        """Return the compact schema of every record added so far."""
        fields = {}
        for path in sorted(self.types):
            parent = path.rpartition(".")[0]
            expected = self.objects.get(parent, 0) if parent else self.records
            types = self.types[path]
            fields[path] = {"types": sorted(types - {"null"}),
                            "nullable": "null" in types or self.present[path] < expected}
        return {"records": self.records, "fields": fields}


def _flat_shapes(records: list[Any]) -> list[Shape] | None:
    """Group a page's records by their field names (in order): each group's names, size
    and the value types of each field; None if a record is not an object of scalars and
    arrays (it needs the walk of `add`).

    Paths enter the schema in the order they first appear either way, so `MAX_FIELDS`
    keeps the same ones; most pages have a handful of shapes for a thousand records.
    """
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for record in records:
        if type(record) is not dict:
            return None
        groups.setdefault(tuple(record), []).append(record)
    shapes = []
    for names, group in groups.items():
        kinds = [set(map(type, column)) for column in
                 zip(*map(dict.values, group), strict=True)]
        if any(issubclass(kind, dict) for column in kinds for kind in column):
            return None
        shapes.append((names, len(group), kinds))
    return shapes
