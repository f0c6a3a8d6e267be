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

from typing import Any

MAX_DEPTH = 4
MAX_FIELDS = 1000
ROOT = "$"


def json_type(value: Any) -> str:
    """Return the JSON type name of a decoded JSON value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
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

    def _note(self, path: str, value: Any) -> bool:
        if path not in self.types and len(self.types) >= MAX_FIELDS:
            return False
        self.types.setdefault(path, set()).add(json_type(value))
        self.present[path] = self.present.get(path, 0) + 1
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
