"""A whole batch about to be published, with the batch it would replace.

`load` returns the candidate once every page and the totals of a batch are stored, or
None while it is still arriving; the preparers and gates of `app.publish` read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.store import Store
from config.streams import StreamDefinition


@dataclass(frozen=True)
class Candidate:
    """A whole batch about to be published, with the batch it would replace."""

    store: Store
    stream: str
    version: int
    batch: dict[str, Any]
    previous: dict[str, Any] | None
    definition: StreamDefinition | None
    # Records the batch will hold, one per key (known once its records are keyed).
    kept: int | None = None

    @property
    def records(self) -> int:
        """Return how many records the batch will hold."""
        return int(self.batch.get("records_received", 0)) if self.kept is None else self.kept


def whole(batch: dict[str, Any]) -> bool:
    """Tell whether every page and the totals of a running batch have arrived."""
    return (batch.get("status") == "running" and "expected_pages" in batch
            and batch.get("expected_pages") == batch.get("pages_received", 0)
            and batch.get("expected_records") == batch.get("records_received", 0))


def load(store: Store, stream: str, version: int) -> Candidate | None:
    """Return the batch as a publish candidate, or None while it is not whole."""
    batch = store.reader.batch_or_none(stream, version)
    if batch is None or not whole(batch):
        return None
    current = store.reader.current_version(stream)
    previous = store.reader.batch_or_none(stream, current) if current else None
    return Candidate(store, stream, version, batch, previous,
                     store.definitions.get(stream))
