"""Example custom middleware, one of each kind `tasks.middleware.custom` accepts.

Allow them with ``CUSTOM_MIDDLEWARE_PREFIXES=tasks.middleware.examples`` and declare:

    {"type": "custom", "path": "tasks.middleware.examples.Redact",
     "options": {"fields": ["email"], "replacement": "***"}}
    {"type": "custom", "path": "tasks.middleware.examples.skip_test_records",
     "options": {"marker": "test"}}
"""

from __future__ import annotations

from typing import Any

from tasks.middleware.base import BatchContext, RecordMiddleware


class Redact(RecordMiddleware):
    """Replace the value of top-level `fields` with `replacement` (a `Middleware` subclass)."""

    def __init__(self, fields: list[str], replacement: str = "[redacted]") -> None:
        super().__init__()
        self.fields = list(fields)
        self.replacement = replacement

    def one(self, record: dict[str, Any], context: BatchContext) -> dict[str, Any] | None:
        if self.tally.key_path not in record:
            self.tally.drop(record, "record without its key cannot be traced", context)
            return None
        return {name: self.replacement if name in self.fields else value
                for name, value in record.items()}


def skip_test_records(records: list[Any], context: BatchContext, *, marker: str = "test"
                      ) -> list[Any]:
    """Drop records whose `tags` list holds `marker` (a plain function)."""
    return [record for record in records
            if not (isinstance(record, dict) and marker in (record.get("tags") or []))]
