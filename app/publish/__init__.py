"""What happens around the one atomic publish step of a whole batch.

When the last page or the totals of a batch arrive, `settle` runs, in order:
1. the *preparers*: each returns metadata fields to write with the batch in the same
   atomic step (change counts, schema drift, ...);
2. the *gates*: each may return a reason to keep the batch `quarantined` instead
   (empty batch, too many records dropped, schema drift, ...);
3. the fenced Lua commit (`BatchWriter.try_publish` or `.quarantine`).
A quarantined batch can be published or discarded by hand later. Preparers and gates
are plain functions of a `Candidate`; they must be idempotent, since two ingest consumers
may settle the same batch at once (the Lua step decides once; the one that lost makes the
change data permanent again after its own writes), and a consumer that died settling is
replaced by the next delivery, which settles again. The commit also checks what is really
stored against the totals: staging data that expired answers "staging_expired".
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from app.publish import drift, gates, incremental
from app.publish.candidate import Candidate, load
from app.store import Store

log = logging.getLogger(__name__)

Preparer = Callable[[Candidate], dict[str, str]]
Gate = Callable[[Candidate], str | None]


def change_set(candidate: Candidate) -> dict[str, str]:
    """Stage the batch's change set against the published batch; return its counts.

    The diff is by the stream's `key` (`app.store.changesets`); the publish step makes the
    change set permanent in the same Lua step as the pointer, and the change feed
    (GET /streams/<name>/changes) folds the change sets of several versions into one.
    """
    definition = candidate.definition
    if definition is None:
        return {}
    base = int(candidate.previous.get("version", 0)) if candidate.previous else 0
    diff = candidate.store.change_sets.compute(candidate.stream, candidate.version, base,
                                               definition.key)
    return {} if diff is None else {"changes": diff.to_field()}


PREPARERS: list[Preparer] = [drift.schema_drift, change_set]
GATES: list[Gate] = [gates.empty_batch, gates.too_many_dropped, drift.drifted,
                     gates.invalid_records]


def settle(store: Store, stream: str, version: int) -> str:
    """Publish or quarantine a whole batch; return the verdict ("waiting" if not whole)."""
    found = load(store, stream, version)
    if found is None:
        status = store.reader.batch_or_none(stream, version) or {}
        return "waiting" if status.get("status") == "running" else "not_running"
    if incremental.is_incremental(found):  # merged onto its base: its own pipeline
        return incremental.settle(found)
    extra: dict[str, str] = {}
    for prepare in PREPARERS:
        extra.update(prepare(found))
    reasons = [reason for gate in GATES if (reason := gate(found))]
    if reasons:
        verdict = store.writer.quarantine(stream, version, "; ".join(reasons), extra)
    else:
        verdict = store.writer.try_publish(stream, version, extra)
    if verdict == "not_running":  # another consumer settled it first, maybe before our
        store.writer.keep_change_data(stream, version)  # change data was written: keep it
    if verdict == "published":
        incremental.published(found)
    log.info("batch settled stream=%s version=%s verdict=%s%s", stream, version, verdict,
             f" reason={reasons[0]}" if reasons else "")
    return verdict
