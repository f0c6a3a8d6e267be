"""Record-quality middleware: `dedupe` by key and `validate` against a JSON Schema.

`dedupe` keeping the first record of a key drops later ones as pages go by. Keeping the
last cannot work page by page (an earlier page may already be sent), so it holds every
record back until the end of the batch and releases them in `finish`, in the order of
each key's last occurrence: memory grows with the batch, and the records arrive at
data-streams as one final page.
"""

from __future__ import annotations

from typing import Any

import orjson
from jsonschema import validators
from jsonschema.exceptions import best_match
from referencing import Registry

from app.records import get_path
from config.middleware import DedupeSpec, ValidateSpec, non_local_refs
from tasks.middleware.base import BatchContext, Middleware, Record

ABSENT = object()
# A schema resolves references only inside itself: an empty registry, whose default
# `retrieve` refuses every URI (jsonschema's own default would fetch http, file and data).
LOCAL_ONLY: Registry[Any] = Registry()


class Dedupe(Middleware):
    type = "dedupe"

    def __init__(self, spec: DedupeSpec, key_path: str) -> None:
        super().__init__(key_path)
        self.key = spec.key or [key_path]
        self.keep = spec.keep
        self.seen: set[bytes] = set()
        self.held: dict[Any, Record] = {}
        self.keyless = 0

    def _key(self, record: Record) -> bytes | None:
        values = [get_path(record, path, ABSENT) if isinstance(record, dict) else ABSENT
                  for path in self.key]
        if any(value is ABSENT for value in values):
            return None
        return orjson.dumps(values, option=orjson.OPT_SORT_KEYS)

    def apply(self, records: list[Record], context: BatchContext) -> list[Record]:
        kept: list[Record] = []
        for record in records:
            key = self._key(record)
            if key is None:
                self.tally.fail(record, f"no key {'+'.join(self.key)}; kept", context)
                self.keyless += 1
                self._keep(("no-key", self.keyless), record, kept)
            elif self.keep == "last":
                if key in self.held:
                    self.tally.drop(self.held.pop(key), self._reason(key), context)
                self.held[key] = record
            elif key in self.seen:
                self.tally.drop(record, self._reason(key), context)
            else:
                self.seen.add(key)
                kept.append(record)
        return kept

    def _keep(self, slot: Any, record: Record, kept: list[Record]) -> None:
        if self.keep == "last":
            self.held[slot] = record
        else:
            kept.append(record)

    def _reason(self, key: bytes) -> str:
        return f"duplicate key {key.decode()} (kept {self.keep})"

    def finish(self, context: BatchContext) -> list[Record]:
        held, self.held = list(self.held.values()), {}
        return held


class Validate(Middleware):
    type = "validate"

    def __init__(self, spec: ValidateSpec, key_path: str) -> None:
        super().__init__(key_path)
        schema = spec.json_schema
        if non_local_refs(schema):  # a definition stored before the PUT check
            raise ValueError("the schema refers outside itself ($ref); nothing is fetched")
        self.validator = validators.validator_for(schema)(schema, registry=LOCAL_ONLY)
        self.on_invalid = spec.on_invalid

    def apply(self, records: list[Record], context: BatchContext) -> list[Record]:
        kept = []
        for record in records:
            error = best_match(self.validator.iter_errors(record))
            if error is None:
                kept.append(record)
                continue
            where = "/".join(str(part) for part in error.absolute_path) or "(record)"
            reason = f"{where}: {error.message}"
            if self.on_invalid == "fail":
                key = get_path(record, self.tally.key_path, None) if isinstance(
                    record, dict) else None
                raise ValueError(f"record {key!r} is invalid: {reason}")
            if self.on_invalid == "quarantine":
                self.tally.quarantine(record, reason, context)
            else:
                self.tally.drop(record, reason, context)
        return kept
