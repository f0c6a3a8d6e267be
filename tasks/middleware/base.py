"""The middleware interface: records in, records out, with the batch context at hand.

A middleware is built once per batch. `apply` is called for every page, in order;
`finish` once after the last page, for a middleware that holds records back (dedupe
keeping the last): a list, or an iterator the chain reads a page at a time. Records it
removes or cannot process are reported to its `Tally`, so they are counted, with up to
`MAX_SAMPLES` sample reasons, in the batch metadata.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from app.records import get_path

Record = Any
MAX_SAMPLES = 10
MAX_REASON = 300


@dataclass(frozen=True)
class BatchContext:
    """What a middleware may know about the batch and page it is working on."""

    stream: str
    version: int
    fetched_at: str
    page: int = 0
    source_url: str = ""


class Tally:
    """Counts of one middleware: records in and out, dropped, failed, quarantined."""

    def __init__(self, key_path: str = "id") -> None:
        self.key_path = key_path
        self.records_in = self.records_out = 0
        self.dropped = self.failed = self.quarantined = 0
        self.samples: list[dict[str, Any]] = []

    def _sample(self, outcome: str, record: Record, reason: str, page: int) -> None:
        if len(self.samples) < MAX_SAMPLES:
            key = get_path(record, self.key_path, None) if isinstance(record, dict) else None
            self.samples.append({"outcome": outcome, "page": page, "key": key,
                                 "reason": reason[:MAX_REASON]})

    def drop(self, record: Record, reason: str, context: BatchContext) -> None:
        """Count a record removed from the batch."""
        self.dropped += 1
        self._sample("dropped", record, reason, context.page)

    def fail(self, record: Record, reason: str, context: BatchContext) -> None:
        """Count a record kept although a value of it could not be processed."""
        self.failed += 1
        self._sample("failed", record, reason, context.page)

    def quarantine(self, record: Record, reason: str, context: BatchContext) -> None:
        """Count a record removed for review; the batch will be quarantined."""
        self.quarantined += 1
        self._sample("quarantined", record, reason, context.page)

    def as_dict(self) -> dict[str, Any]:
        """Return the counts; removals nobody explained are counted as dropped."""
        unexplained = self.records_in - self.records_out - self.dropped - self.quarantined
        return {"in": self.records_in, "out": self.records_out,
                "dropped": self.dropped + max(unexplained, 0), "failed": self.failed,
                "quarantined": self.quarantined, "samples": list(self.samples)}


class Middleware:
    """Base of every middleware; subclasses override `apply` (and maybe `finish`).

    `context_fields` names the top-level fields whose values it takes from the batch
    context (fetch time, version, page, ...) rather than from the upstream: they change
    with every batch, so the change feed does not count them as changes.
    """

    type = "custom"
    context_fields: tuple[str, ...] = ()

    def __init__(self, key_path: str = "id") -> None:
        self.tally = Tally(key_path)

    def apply(self, records: list[Record], context: BatchContext) -> list[Record]:
        """Return the page's records after this middleware."""
        return records

    def finish(self, context: BatchContext) -> Iterable[Record]:
        """Return (or yield) records held back until the end of the batch (none by default)."""
        return []


class RecordMiddleware(Middleware):
    """A middleware that maps each JSON-object record on its own (None drops it)."""

    def apply(self, records: list[Record], context: BatchContext) -> list[Record]:
        kept = []
        for record in records:
            if not isinstance(record, dict):
                self.tally.drop(record, f"record is {type(record).__name__}, not an object",
                                context)
                continue
            result = self.one(record, context)
            if result is not None:
                kept.append(result)
        return kept

    def one(self, record: dict[str, Any], context: BatchContext) -> dict[str, Any] | None:
        """Return the transformed record, or None after reporting why it was dropped."""
        return record
