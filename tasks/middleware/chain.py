"""The middleware chain: records in, records out, with the batch context at hand."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from config.streams import StreamDefinition


@dataclass(frozen=True)
class BatchContext:
    """What a middleware may know about the batch and page it is working on."""

    stream: str
    version: int
    fetched_at: str
    page: int = 0
    source_url: str = ""


class Chain:
    """An ordered list of middleware applied to every page of one batch."""

    def __init__(self, steps: list[Any] | None = None) -> None:
        self.steps = steps or []

    def apply(self, records: list[Any], context: BatchContext) -> list[Any]:
        """Return the page's records after every step."""
        for step in self.steps:
            records = step(records, context)
        return records

    def stats(self) -> dict[str, Any]:
        """Return per-step counts for the batch metadata."""
        return {}


def build_chain(definition: StreamDefinition) -> Chain:
    """Build the chain declared by a stream definition."""
    return Chain()
