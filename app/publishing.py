"""What happens around the one atomic publish step of a whole batch.

When the last page or the totals of a batch arrive, `settle` runs, in order:
1. the *preparers*: each returns metadata fields to write with the batch in the same
   atomic step (change counts, schema drift, ...);
2. the *gates*: each may return a reason to keep the batch `quarantined` instead
   (empty batch, too many records dropped, schema drift, ...);
3. the fenced Lua commit (`BatchWriter.try_publish` or `.quarantine`).
A quarantined batch can be published or discarded by hand later. Preparers and gates
are plain functions registered in `PREPARERS` and `GATES`; they must be idempotent, since
two ingest consumers may settle the same batch at once (the Lua step decides once).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app import changes, drift
from app.services import Store
from config.streams import StreamDefinition

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Candidate:
    """A whole batch about to be published, with the batch it would replace."""

    store: Store
    stream: str
    version: int
    batch: dict[str, Any]
    previous: dict[str, Any] | None
    definition: StreamDefinition | None


Preparer = Callable[[Candidate], dict[str, str]]
Gate = Callable[[Candidate], str | None]


def empty_batch(candidate: Candidate) -> str | None:
    """Refuse a batch without records unless the stream allows empty batches."""
    allowed = candidate.definition is not None and candidate.definition.publish_gate.allow_empty
    if candidate.batch.get("records_received", 0) == 0 and not allowed:
        return "empty_batch"
    return None


def too_many_dropped(candidate: Candidate) -> str | None:
    """Refuse a batch that lost more than max_drop_ratio of the previous batch's records."""
    ratio = candidate.definition.publish_gate.max_drop_ratio if candidate.definition else None
    if ratio is None or not candidate.previous:
        return None
    before = int(candidate.previous.get("records", 0))
    now = int(candidate.batch.get("records_received", 0))
    if before and (before - now) / before > ratio:
        return f"drop_ratio: {now} records against {before} before (max drop {ratio:.0%})"
    return None


PREPARERS: list[Preparer] = [drift.schema_drift, changes.change_set]
GATES: list[Gate] = [empty_batch, too_many_dropped, drift.drifted, drift.invalid_records]


def _whole(batch: dict[str, Any]) -> bool:
    return (batch.get("status") == "running" and "expected_pages" in batch
            and batch.get("expected_pages") == batch.get("pages_received", 0)
            and batch.get("expected_records") == batch.get("records_received", 0))


def candidate(store: Store, stream: str, version: int) -> Candidate | None:
    """Return the batch as a publish candidate, or None while it is not whole."""
    batch = store.reader.batch_or_none(stream, version)
    if batch is None or not _whole(batch):
        return None
    current = store.reader.current_version(stream)
    previous = store.reader.batch_or_none(stream, current) if current else None
    return Candidate(store, stream, version, batch, previous,
                     store.definitions.get(stream))


def settle(store: Store, stream: str, version: int) -> str:
    """Publish or quarantine a whole batch; return the verdict ("waiting" if not whole)."""
    found = candidate(store, stream, version)
    if found is None:
        status = store.reader.batch_or_none(stream, version) or {}
        return "waiting" if status.get("status") == "running" else "not_running"
    extra: dict[str, str] = {}
    for prepare in PREPARERS:
        extra.update(prepare(found))
    reasons = [reason for gate in GATES if (reason := gate(found))]
    if reasons:
        verdict = store.writer.quarantine(stream, version, "; ".join(reasons), extra)
    else:
        verdict = store.writer.try_publish(stream, version, extra)
    log.info("batch settled stream=%s version=%s verdict=%s%s", stream, version, verdict,
             f" reason={reasons[0]}" if reasons else "")
    return verdict
