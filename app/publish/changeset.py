"""The change-set preparer: what a batch adds, updates and removes against the published one.

Registered in `app.publish.PREPARERS`. When a whole batch settles, `change_set` diffs it
against the published batch by the stream's `key` and stages the change set with the
batch (`app.store.changesets`); the publish step makes it permanent in the same atomic Lua
step as the pointer. Its counts become the batch metadata field ``changes``; the change
feed (GET /streams/<name>/changes) folds the change sets of several versions into one.
"""

from __future__ import annotations

from app.publish.candidate import Candidate


def change_set(candidate: Candidate) -> dict[str, str]:
    """Store the batch's change set against the published batch; return its counts."""
    definition = candidate.definition
    if definition is None:
        return {}
    base = int(candidate.previous.get("version", 0)) if candidate.previous else 0
    diff = candidate.store.change_sets.compute(candidate.stream, candidate.version, base,
                                               definition.key)
    return {} if diff is None else {"changes": diff.to_field()}
