"""Schema drift of a batch against the published one: the diff, its preparer and gate.

The worker sends each batch's schema (`tasks.schema_infer`); here `diff` compares it with
the published batch's. Registered in `app.publish`: the preparer `schema_drift` stores the
drift (fields added, removed, changed) with every batch that settles; the gate `drifted`
quarantines a drifting batch when the stream says ``"on_schema_drift": "quarantine"``.
"""

from __future__ import annotations

from typing import Any

import orjson

from app.publish.candidate import Candidate


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Return the drift from `before` to `after`: fields added, removed, changed."""
    old, new = before.get("fields", {}), after.get("fields", {})
    changed = {path: {"before": old[path], "after": new[path]}
               for path in sorted(old.keys() & new.keys()) if old[path] != new[path]}
    return {"added": sorted(new.keys() - old.keys()),
            "removed": sorted(old.keys() - new.keys()), "changed": changed}


def has_drift(drift: dict[str, Any]) -> bool:
    """Tell whether a `diff` found any difference."""
    return bool(drift.get("added") or drift.get("removed") or drift.get("changed"))


def describe(drift: dict[str, Any], limit: int = 5) -> str:
    """Return a one-line summary of a `diff`, naming at most `limit` fields per kind."""
    parts = []
    for kind in ("added", "removed", "changed"):
        names = list(drift.get(kind) or [])
        if names:
            more = f" (+{len(names) - limit} more)" if len(names) > limit else ""
            parts.append(f"{kind} {', '.join(names[:limit])}{more}")
    return "; ".join(parts) or "no drift"


def batch_drift(batch: dict[str, Any], previous: dict[str, Any] | None
                ) -> dict[str, Any] | None:
    """Return the drift of `batch` against `previous`; None when either has no schema."""
    before = previous.get("schema") if previous else None
    after = batch.get("schema")
    if not isinstance(before, dict) or not isinstance(after, dict):
        return None
    if not before.get("records") or not after.get("records"):
        return None
    return diff(before, after)


def schema_drift(candidate: Candidate) -> dict[str, str]:
    """Return the `schema_drift` metadata field of a batch about to settle."""
    drift = batch_drift(candidate.batch, candidate.previous)
    return {} if drift is None else {"schema_drift": orjson.dumps(drift).decode()}


def drifted(candidate: Candidate) -> str | None:
    """Refuse a batch whose schema drifted, if the stream quarantines on drift."""
    definition = candidate.definition
    if definition is None or definition.on_schema_drift != "quarantine":
        return None
    drift = batch_drift(candidate.batch, candidate.previous)
    if drift is None or not has_drift(drift):
        return None
    return f"schema_drift: {describe(drift)}"
