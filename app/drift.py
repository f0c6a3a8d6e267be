"""Publish-time checks of what the middleware and the schema say about a batch.

Registered in `publishing`: the preparer `schema_drift` stores, with every batch that
settles, its drift against the published batch's schema (fields added, removed,
changed); the gate `drifted` quarantines a drifting batch when the stream says
``"on_schema_drift": "quarantine"``; the gate `invalid_records` quarantines a batch from
which a `validate` middleware set records aside (``"on_invalid": "quarantine"``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from app import schema_infer

if TYPE_CHECKING:
    from app.publishing import Candidate


def batch_drift(batch: dict[str, Any], previous: dict[str, Any] | None
                ) -> dict[str, Any] | None:
    """Return the drift of `batch` against `previous`; None when either has no schema."""
    before = previous.get("schema") if previous else None
    after = batch.get("schema")
    if not isinstance(before, dict) or not isinstance(after, dict):
        return None
    if not before.get("records") or not after.get("records"):
        return None
    return schema_infer.diff(before, after)


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
    if drift is None or not schema_infer.has_drift(drift):
        return None
    return f"schema_drift: {schema_infer.describe(drift)}"


def invalid_records(candidate: Candidate) -> str | None:
    """Refuse a batch from which a validate middleware quarantined records."""
    stats = candidate.batch.get("middleware")
    if not isinstance(stats, dict) or not stats.get("quarantined"):
        return None
    steps = [f"{step['index']} ({step['type']})" for step in stats.get("steps", [])
             if step.get("quarantined")]
    return (f"invalid_records: {stats['quarantined']} records set aside by middleware "
            f"{', '.join(steps)}")
