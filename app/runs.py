"""Batches on demand: fetch a stream now, or run a full refresh of an incremental stream.

`run_now` queues one fetch at once, whether the stream is running (scheduled) or
stopped, and is refused while a batch of the stream is in flight: at most one batch per
stream runs, and a queued one would only be skipped. With ``full`` it first asks for a
full batch (`app.store.incremental.FullRefresh`), which also finds the records deleted
upstream without a tombstone; the request stays until a batch takes it, so a fetch that
loses a race with a scheduled tick still leaves the next batch full.
"""

from __future__ import annotations

from typing import Any

from app.control import require
from app.exceptions import Conflict
from app.extensions import Store
from app.schedule import Schedules


def run_now(store: Store, schedules: Schedules, name: str, *, full: bool = False
            ) -> dict[str, Any]:
    """Queue one batch of `name` now (a full one with `full`); Conflict while one runs."""
    require(store, name)
    holder = store.locks.holder(name)
    if holder is not None:
        raise Conflict(f"batch {holder[1]} of {name!r} is in flight; retry when it has ended",
                       details={"stream": name, "version": holder[1]})
    if full:
        store.full_refresh.ask(name)
    return {"stream": name, **schedules.describe(name), "queued_task":
            schedules.enqueue_now(name), "full_refresh": full}
