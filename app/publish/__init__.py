"""What happens around the one atomic publish step of a whole batch.

When the last page or the totals of a batch arrive, `settle` runs, in order:
1. *keying* (`keyed`): every record must have the stream's `key` (else the batch fails,
   `missing_key`, naming the key path); of records sharing a key the last wins and the
   others are counted (`duplicates_dropped`); the change set against the published
   batch is staged, blind to fields the middleware set from the batch context;
2. the *preparers*: each returns metadata fields to write with the batch in the same
   atomic step (schema drift, ...);
3. the *gates*: each may return a reason to keep the batch `quarantined` instead
   (empty batch, too many records dropped, schema drift, ...);
4. the fenced Lua commit (`BatchWriter.try_publish` or `.quarantine`), which also removes
   the records a later one of the same key replaced.
A quarantined batch can be published or discarded by hand later. Every step is a plain
function of a `Candidate` and idempotent, since two ingest consumers may settle the same
batch at once (the Lua step decides once; the one that lost makes the change data
permanent again after its own writes), and a consumer that died settling is replaced by
the next delivery, which settles again. The commit also checks what is really stored
against the totals: staging data that expired answers "staging_expired".
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from app.publish import drift, gates, incremental
from app.publish.candidate import Candidate, load
from app.store import Store
from app.store.changesets import Diff

log = logging.getLogger(__name__)

Preparer = Callable[[Candidate], dict[str, str]]
Gate = Callable[[Candidate], str | None]


def context_fields(batch: dict[str, Any] | None) -> frozenset[str]:
    """Return the fields a batch's middleware set from the batch context (not upstream)."""
    middleware = (batch or {}).get("middleware")
    names = middleware.get("context_fields") if isinstance(middleware, dict) else None
    return frozenset(str(name) for name in names) if isinstance(names, list) else frozenset()


def keyed(candidate: Candidate) -> Diff | None:
    """Key the batch's records and stage its change set against the published batch.

    The diff is by the stream's `key`: the one the pages staged (`app.store.pagediff`)
    when they can stand for the batch, else one walk over the batch
    (`app.store.changesets`). The publish step makes the
    change set permanent in the same Lua step as the pointer, and the change feed
    (GET /streams/<name>/changes) folds the change sets of several versions into one.
    None when the stream has no definition any more.
    """
    definition = candidate.definition
    if definition is None:
        return None
    base = int(candidate.previous.get("version", 0)) if candidate.previous else 0
    ignore = context_fields(candidate.batch)
    staged = candidate.store.page_diffs.staged(candidate.stream, candidate.version, base,
                                               definition.key, ignore)
    if staged is not None:  # the pages staged it: nothing to read back
        return staged
    return candidate.store.change_sets.compute(
        candidate.stream, candidate.version, base, definition.key,
        ignore=ignore, ignore_base=context_fields(candidate.previous))


PREPARERS: list[Preparer] = [drift.schema_drift]
GATES: list[Gate] = [gates.empty_batch, gates.too_many_dropped, drift.drifted,
                     gates.invalid_records]


def settle(store: Store, stream: str, version: int) -> str:
    """Publish, quarantine or fail a whole batch; return the verdict ("waiting" if not whole)."""
    found = load(store, stream, version)
    if found is None:
        status = store.reader.batch_or_none(stream, version) or {}
        return "waiting" if status.get("status") == "running" else "not_running"
    if incremental.is_incremental(found):  # merged onto its base: its own pipeline
        return incremental.settle(found, context_fields(found.batch),
                                  context_fields(found.previous))
    diff = keyed(found)
    if diff is not None and diff.unkeyed:
        return _missing_key(found, diff)
    candidate = replace(found, kept=diff.kept if diff else None)
    extra: dict[str, str] = {}
    if diff is not None:
        received = int(found.batch.get("records_received", 0))
        extra["duplicates_dropped"] = str(max(received - diff.kept, 0))
        if diff.comparable:
            extra["changes"] = diff.to_field()
    for prepare in PREPARERS:
        extra.update(prepare(candidate))
    reasons = [reason for gate in GATES if (reason := gate(candidate))]
    losers = diff.losers if diff else None
    paged = bool(diff and diff.paged)
    if reasons:
        verdict = store.writer.quarantine(stream, version, "; ".join(reasons), extra, losers,
                                          paged)
    else:
        verdict = store.writer.try_publish(stream, version, extra, losers, paged)
    if verdict == "not_running":  # another consumer settled it first, maybe before our
        store.writer.keep_change_data(stream, version)  # change data was written: keep it
    if verdict == "published":
        incremental.published(found)
    log.info("batch settled stream=%s version=%s verdict=%s%s", stream, version, verdict,
             f" reason={reasons[0]}" if reasons else "")
    return verdict


def _missing_key(candidate: Candidate, diff: Diff) -> str:
    """Fail a batch with records that lack the stream's key: it cannot be diffed or
    deduplicated, and its change feed would be silently empty."""
    path = candidate.definition.key if candidate.definition else ""
    error = {"kind": "missing_key", "key": path, "records": diff.unkeyed,
             "message": f"{diff.unkeyed} of {diff.records} records have no value at the "
                        f"stream's key {path!r} (the first has {diff.unkeyed_sample}); "
                        "fix the definition's `key` or its middleware"}
    status = candidate.store.writer.finish(candidate.stream, candidate.version, "failed",
                                           error)
    log.warning("batch failed stream=%s version=%s kind=missing_key key=%s unkeyed=%s",
                candidate.stream, candidate.version, path, diff.unkeyed)
    return "failed" if status == "failed" else "not_running"
