"""Gates of the publish step: each may return a reason to quarantine a whole batch.

A quarantined batch is kept, not served, until someone publishes or discards it by hand
(POST /streams/<name>/batches/<version>/publish or /discard). The drift gate lives with
the drift it reads (`app.publish.drift`).
"""

from __future__ import annotations

from app.publish.candidate import Candidate


def empty_batch(candidate: Candidate) -> str | None:
    """Refuse a batch without records unless the stream allows empty batches."""
    allowed = candidate.definition is not None and candidate.definition.publish_gate.allow_empty
    if candidate.records == 0 and not allowed:
        return "empty_batch"
    return None


def too_many_dropped(candidate: Candidate) -> str | None:
    """Refuse a batch that lost more than max_drop_ratio of the previous version's records
    (0.5 unless the stream sets its own; null turns the gate off)."""
    ratio = candidate.definition.publish_gate.max_drop_ratio if candidate.definition else None
    if ratio is None or not candidate.previous:
        return None
    before = int(candidate.previous.get("records", 0))
    now = candidate.records
    if before and (before - now) / before > ratio:
        return f"drop_ratio: {now} records against {before} before (max drop {ratio:.0%})"
    return None


def invalid_records(candidate: Candidate) -> str | None:
    """Refuse a batch from which a validate middleware quarantined records."""
    stats = candidate.batch.get("middleware")
    if not isinstance(stats, dict) or not stats.get("quarantined"):
        return None
    steps = [f"{step['index']} ({step['type']})" for step in stats.get("steps", [])
             if step.get("quarantined")]
    return (f"invalid_records: {stats['quarantined']} records set aside by middleware "
            f"{', '.join(steps)}")
