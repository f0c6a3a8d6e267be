"""Settling an incremental batch: merged onto its base version, then gated and committed.

An incremental batch carries the version it was fetched against (`base`) and its staged
changes. `settle` checks it may still be merged (the base is still current, the
definition has not changed), merges it (`app.store.incremental`), and then runs the same
kind of gates as a full batch on the merged version before the fenced commit; the commit
itself refuses a batch whose base is no longer current. A batch that changed nothing is
not published: it ends `unchanged` and the current version stays. After a publish, the
record index moves to the new version; after a full batch of an incremental stream
(`published`) it is rebuilt, so the next incremental merge finds it ready.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson

from app.exceptions import BaseVersionGone
from app.publish.candidate import Candidate
from app.publish.drift import batch_drift, describe, has_drift
from app.publish.gates import invalid_records
from app.store.incremental import Merge
from config.incremental import fingerprint

log = logging.getLogger(__name__)


def is_incremental(candidate: Candidate) -> bool:
    """Tell whether the batch is an incremental one (it names its base version)."""
    return candidate.batch.get("base") is not None


def settle(candidate: Candidate, ignore: frozenset[str] = frozenset(),
           ignore_base: frozenset[str] = frozenset()) -> str:
    """Merge, gate and commit an incremental batch; return the verdict.

    `ignore` and `ignore_base` are the fields the middleware of this batch and of the base
    set from the batch context: a record that differs only there is no change.
    """
    store, stream, version = candidate.store, candidate.stream, candidate.version
    base = int(candidate.batch["base"])
    refused = _refusal(candidate, base)
    if refused:
        return _end(candidate, "abandoned", *refused)
    definition = candidate.definition
    assert definition is not None  # _refusal checked it
    try:
        merge = store.merger.merge(stream, version, base, definition.key, definition.order_by,
                                   (ignore, ignore_base))
    except BaseVersionGone as exc:
        return _end(candidate, "failed", "base_gone", exc.message)
    if isinstance(merge, str):
        return merge  # not_running, or staging_expired (the consumer fails the batch)
    if not merge.changed:
        return _end(candidate, "unchanged", "unchanged",
                    f"no record changed since version {base}; it stays current")
    total = _records(candidate) + merge.diff.added - merge.diff.removed
    schema = merged_schema((candidate.previous or {}).get("schema"),
                           candidate.batch.get("schema"), total)
    extra = {"changes": merge.diff.to_field(), "duplicates_dropped": str(merge.duplicates),
             **_schema_fields(candidate, schema)}
    reasons = [reason for reason in _gates(candidate, total, schema) if reason]
    if reasons:
        verdict = store.writer.quarantine(stream, version, "; ".join(reasons), extra)
    else:
        verdict = store.writer.try_publish(stream, version, extra)
    if verdict == "published":
        _advance_index(candidate, base, merge)
    store.merger.set_aside(stream, version)
    log.info("incremental batch settled stream=%s version=%s base=%s verdict=%s added=%s "
             "updated=%s removed=%s", stream, version, base, verdict, merge.diff.added,
             merge.diff.updated, merge.diff.removed)
    return verdict


def published(candidate: Candidate) -> None:
    """After a full batch of an incremental stream publishes, index its records."""
    definition = candidate.definition
    if definition is None or definition.source.incremental is None:
        candidate.store.record_index.drop(candidate.stream)  # no longer incremental
        return
    try:
        candidate.store.record_index.build(candidate.stream, candidate.version, definition.key)
    except Exception:  # the next incremental merge rebuilds it; the batch is published
        log.exception("record index not built stream=%s version=%s", candidate.stream,
                      candidate.version)


def _refusal(candidate: Candidate, base: int) -> tuple[str, str] | None:
    """Return (kind, message) when the batch can no longer be merged onto `base`."""
    current = int(candidate.previous["version"]) if candidate.previous else 0
    if current != base:
        return "stale", (f"it was fetched against version {base}, but version {current} is "
                         "current now; the next batch fetches from the current one")
    definition = candidate.definition
    state = candidate.batch.get("incremental")
    made_with = state.get("fingerprint") if isinstance(state, dict) else None
    if definition is None or definition.source.incremental is None or (
            fingerprint(definition) != made_with):
        return "definition_changed", ("the stream's definition changed during the batch; "
                                      "the next batch starts over")
    return None


def _end(candidate: Candidate, status: str, kind: str, message: str) -> str:
    store = candidate.store
    final = store.writer.finish(candidate.stream, candidate.version, status,
                                {"kind": kind, "message": message})
    store.merger.set_aside(candidate.stream, candidate.version)
    log.info("incremental batch ended stream=%s version=%s status=%s kind=%s",
             candidate.stream, candidate.version, final, kind)
    if final != status:
        return "not_running"
    return kind if status == "abandoned" else status  # stale, as PUBLISH answers it


def _records(candidate: Candidate) -> int:
    return int((candidate.previous or {}).get("records", 0))


def _advance_index(candidate: Candidate, base: int, merge: Merge) -> None:
    index = candidate.store.record_index
    if not index.advance(candidate.stream, base, candidate.version, merge.put, merge.removed):
        log.info("record index not moved stream=%s version=%s: it will be rebuilt",
                 candidate.stream, candidate.version)


def merged_schema(before: Any, batch: Any, records: int) -> dict[str, Any] | None:
    """Return the schema of base + changes: the union of both, fields new to it nullable."""
    if not isinstance(batch, dict):
        return before if isinstance(before, dict) else None
    if not isinstance(before, dict) or not before.get("records"):
        return {**batch, "records": records}
    fields = dict(before.get("fields", {}))
    for path, seen in batch.get("fields", {}).items():
        old = fields.get(path)
        if old is None:
            fields[path] = {"types": seen["types"], "nullable": True}
        else:
            fields[path] = {"types": sorted(set(old["types"]) | set(seen["types"])),
                            "nullable": bool(old["nullable"] or seen["nullable"])}
    return {"records": records, "fields": dict(sorted(fields.items()))}


def _schema_fields(candidate: Candidate, schema: dict[str, Any] | None) -> dict[str, str]:
    if schema is None:
        return {}
    fields = {"schema": orjson.dumps(schema).decode()}
    found = batch_drift({"schema": schema}, candidate.previous)
    if found is not None:
        fields["schema_drift"] = orjson.dumps(found).decode()
    return fields


def _gates(candidate: Candidate, total: int, schema: dict[str, Any] | None
           ) -> list[str | None]:
    """The publish gates, asked of the merged version (not of the changes alone)."""
    definition = candidate.definition
    assert definition is not None
    gate = definition.publish_gate
    reasons = [invalid_records(candidate)]
    if total == 0 and not gate.allow_empty:
        reasons.append("empty_batch")
    before = _records(candidate)
    if gate.max_drop_ratio is not None and before and (before - total) / before > (
            gate.max_drop_ratio):
        reasons.append(f"drop_ratio: {total} records against {before} before (max drop "
                       f"{gate.max_drop_ratio:.0%})")
    found = batch_drift({"schema": schema}, candidate.previous)
    if definition.on_schema_drift == "quarantine" and found and has_drift(found):
        reasons.append(f"schema_drift: {describe(found)}")
    return reasons
