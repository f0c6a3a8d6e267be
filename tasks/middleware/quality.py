"""Record-quality middleware: `dedupe` by key and `validate` against a JSON Schema.

`dedupe` keeping the first record of a key drops later ones as pages go by, remembering
the keys sent on disk (`SeenKeys`). Keeping the last cannot work page by page (an earlier
page may already be sent), so it holds the latest record of each key back until the end
of the batch, on disk (`HeldRecords`), and releases them in `finish`, in the order of
each key's last occurrence, as final pages. Either way the worker's memory does not grow
with the batch.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from jsonschema import validators
from jsonschema.exceptions import best_match
from referencing import Registry

from app.records import get_path
from config.middleware import DedupeSpec, ValidateSpec, non_local_refs
from tasks.middleware.base import MAX_SAMPLES, BatchContext, Middleware, Record
from tasks.middleware.held import HeldRecords, SeenKeys, loads

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
        self.seen = SeenKeys() if self.keep == "first" else None
        self.held = HeldRecords() if self.keep == "last" else None
        self.named = 0  # records replaced across pages that were looked up and counted
        self.keyless = 0

    def _key(self, record: Record) -> bytes | None:
        values = [get_path(record, path, ABSENT) if isinstance(record, dict) else ABSENT
                  for path in self.key]
        if any(value is ABSENT for value in values):
            return None
        return orjson.dumps(values, option=orjson.OPT_SORT_KEYS)

    def apply(self, records: list[Record], context: BatchContext) -> list[Record]:
        if self.held is not None:
            self._hold(self.held, records, context)
            return []
        return self._first(self.seen, records, context) if self.seen is not None else records

    def _first(self, keys: SeenKeys, records: list[Record], context: BatchContext
               ) -> list[Record]:
        """Keep the records whose key was not seen before; drop (and count) the others."""
        keyed = [(self._key(record), record) for record in records]
        seen = keys.known([key for key, _ in keyed if key is not None])
        kept: list[Record] = []
        new: list[bytes] = []
        for key, record in keyed:
            if key is None:
                self._keyless(record, context)
                kept.append(record)
            elif key in seen:
                self.tally.drop(record, self._reason(key), context)
            else:
                seen.add(key)
                new.append(key)
                kept.append(record)
        keys.add(new)
        return kept

    def _hold(self, held: HeldRecords, records: list[Record], context: BatchContext) -> None:
        """Hold the page's latest record per key; count those it replaces (and, while
        samples are wanted, look the replaced ones up to name them)."""
        keyed = [(self._key(record), record) for record in records]
        sampling = len(self.tally.samples) < MAX_SAMPLES
        earlier = held.earlier([key for key, _ in keyed if key is not None]) if sampling else {}
        page: dict[bytes, Record] = {}  # in the order of each key's last occurrence
        for key, record in keyed:
            if key is None:
                self._keyless(record, context)
                key = b"\0no-key %d" % self.keyless  # never a JSON array: its own slot
            elif key in page:
                self.tally.drop(page.pop(key), self._reason(key), context)
            elif key in earlier:
                self.named += 1
                self.tally.drop(loads(earlier.pop(key)), self._reason(key), context)
            page[key] = record
        held.put(list(page.items()))

    def _keyless(self, record: Record, context: BatchContext) -> None:
        self.tally.fail(record, f"no key {'+'.join(self.key)}; kept", context)
        self.keyless += 1

    def _reason(self, key: bytes) -> str:
        return f"duplicate key {key.decode()} (kept {self.keep})"

    def finish(self, context: BatchContext) -> Iterable[Record]:
        if self.held is None:
            return []
        # Replaced across pages once samples were full: counted here, in one go.
        self.tally.dropped += self.held.replaced() - self.named
        return self.held.last()


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
