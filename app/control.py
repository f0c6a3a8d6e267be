"""The commands of the API: define, start, stop, run now, delete, describe and list streams.

Views call these with the store and the schedules; nothing here knows about HTTP.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from redis.exceptions import LockError

from app import delivery, redaction
from app.exceptions import Conflict, StreamNotFound
from app.extensions import Store
from app.ops.metrics import observe_batch
from app.schedule import Schedules
from app.store.cursors import StreamsCursor
from app.store.keys import StreamKeys
from app.store.locks import BatchLease
from config import defaults
from config.streams import StreamDefinition

# Longest wait for, and life of, the per-stream start/stop lock, in seconds.
CONTROL_LOCK_SECONDS = 10


class StartRequest(BaseModel):
    """Body of POST /streams/<name>/start (optional)."""

    model_config = ConfigDict(extra="forbid")
    interval_seconds: int | None = Field(default=None, ge=defaults.MIN_INTERVAL_SECONDS,
                                         le=defaults.MAX_INTERVAL_SECONDS)
    run_now: bool = True


class StopRequest(BaseModel):
    """Body of POST /streams/<name>/stop (optional)."""

    model_config = ConfigDict(extra="forbid")
    cancel: bool = False


def require(store: Store, name: str) -> StreamDefinition:
    """Return the definition of `name` or raise StreamNotFound."""
    definition = store.definitions.get(name)
    if definition is None:
        raise StreamNotFound(name)
    return definition


@contextmanager
def exclusive(store: Store, name: str) -> Iterator[None]:
    """Run one start or stop of `name` at a time, so each answer is the state it left."""
    key = StreamKeys(store.prefix, name).control
    try:
        with store.connection.lock(key, timeout=CONTROL_LOCK_SECONDS,
                                   blocking_timeout=CONTROL_LOCK_SECONDS):
            yield
    except LockError:
        raise Conflict(f"stream {name!r} is being started or stopped; retry",
                       details={"stream": name}) from None


def start(store: Store, schedules: Schedules, name: str, request: StartRequest
          ) -> dict[str, Any]:
    """Save the stream's schedule entry; on a fresh start, fetch at once."""
    definition = require(store, name)
    with exclusive(store, name):
        return _start(schedules, name, definition, request)


def _start(schedules: Schedules, name: str, definition: StreamDefinition,
           request: StartRequest) -> dict[str, Any]:
    """Save the entry and answer with the state it left (the caller holds the lock)."""
    interval = request.interval_seconds or definition.interval_seconds
    was_running = schedules.load(name) is not None
    schedules.save(name, interval)
    queued = None
    if not was_running and request.run_now:
        queued = schedules.enqueue_now(name)
    return {"stream": name, **schedules.describe(name), "already_running": was_running,
            "queued_task": queued}


def stop(store: Store, schedules: Schedules, name: str, request: StopRequest
         ) -> dict[str, Any]:
    """Remove the schedule entry; with `cancel`, abandon the batch in flight."""
    require(store, name)
    with exclusive(store, name):
        was_running = schedules.remove(name)
        state = schedules.describe(name)
    cancelled = None
    if request.cancel:
        cancelled = cancel_in_flight(store, name)
    return {"stream": name, **state, "was_running": was_running,
            "cancelled_version": cancelled}


def delete(store: Store, schedules: Schedules, name: str) -> int:
    """Stop a stream, cancel its batch in flight and delete every key it has.

    The definition goes first, under the start/stop lock, so no new fetch or start finds
    the stream; the batch in flight is cancelled, so its fetch stops at its next page and
    its late messages are refused; then every key under the stream's hash tag goes
    (version counter, history, versions, change sets, rate limits, OAuth token), and a
    stream defined again under the name starts empty. Return how many keys went.
    """
    require(store, name)
    with exclusive(store, name):
        schedules.remove(name)
        store.definitions.delete(name)
        cancel_in_flight(store, name)
    store.reader.served.forget(name)  # a stream defined again counts from version 1
    return store.purge(name)


def cancel_in_flight(store: Store, name: str) -> int | None:
    """Mark the batch in flight cancelled (never published) and free its lease.

    The batch in flight is the lease holder's or, once a dead worker's lease lapsed, the
    newest batch if it is still running (an orphan nothing will end otherwise).
    """
    holder = store.locks.holder(name)
    if holder is None:
        newest = store.reader.batches(name, limit=1)
        if not newest or newest[0].get("status") != "running":
            return None
        holder = ("", int(newest[0]["version"]))
    token, version = holder
    status = store.writer.finish(name, version, "cancelled",
                                 {"kind": "cancelled", "message": "cancelled by a stop request"},
                                 token=token)
    if status == "cancelled":
        observe_batch(name, "cancelled")
    store.locks.release(BatchLease(stream=name, version=version, token=token))
    return version if status == "cancelled" else None


def run_now(store: Store, schedules: Schedules, name: str, *, full: bool = False
            ) -> dict[str, Any]:
    """Queue one batch of `name` now, running or stopped; Conflict while one is in flight.

    A queued batch would only be skipped while another runs, hence the 409. With `full` it
    first asks for a full batch (`FullRefresh`); the request stays until a batch takes it,
    so a fetch that loses a race with a scheduled tick still leaves the next batch full.
    """
    require(store, name)
    holder = store.locks.holder(name)
    if holder is not None:
        raise Conflict(f"batch {holder[1]} of {name!r} is in flight; retry when it has ended",
                       details={"stream": name, "version": holder[1]})
    if full:
        store.full_refresh.ask(name)
    return {"stream": name, **schedules.describe(name),
            "queued_task": schedules.enqueue_now(name), "full_refresh": full}


def describe(store: Store, schedules: Schedules, name: str) -> dict[str, Any]:
    """Return a stream's definition, schedule state, current version and batch in flight."""
    definition = require(store, name)
    return {"stream": name, **schedules.describe(name),
            "current_version": store.reader.current_version(name),
            "in_progress": store.reader.in_progress(name),
            "rate_limited_until": store.rate_limits.limited_until(name),
            "destinations": delivery.status(store, name, definition),
            "definition": redaction.definition(definition.model_dump(mode="json"))}


@dataclass(frozen=True)
class StreamPage:
    """One page of the stream list, sorted by name, and where to go next."""

    streams: list[dict[str, Any]]
    next_cursor: str | None


def streams_page(store: Store, schedules: Schedules, *, limit: int, after: str | None = None,
                 state: str | None = None, scan: int = defaults.LIST_SCAN_LIMIT
                 ) -> StreamPage:
    """Return one line (name, state, interval, current version) per stream of a page.

    Names come from the sorted index after `after`; their schedule entries and current
    versions are read in one round trip each per chunk. With a `state` filter at most
    `scan` names are examined, so a page may hold fewer lines and still go on.
    """
    found: list[dict[str, Any]] = []
    last, scanned = after, 0
    while len(found) < limit and scanned < scan:
        want = limit - len(found) if state is None else min(limit, scan - scanned)
        names = store.definitions.names_after(last, want)
        if not names:
            return StreamPage(_with_versions(store, found), None)
        states = schedules.describe_many(names)
        for name in names:
            scanned, last = scanned + 1, name
            if state is None or states[name]["state"] == state:
                found.append({"stream": name, **states[name]})
            if len(found) == limit:
                break
    more = last is not None and bool(store.definitions.names_after(last, 1))
    return StreamPage(_with_versions(store, found),
                      StreamsCursor(last).encode() if more and last else None)


def _with_versions(store: Store, lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    versions = store.reader.current_versions([line["stream"] for line in lines])
    return [{**line, "current_version": versions[line["stream"]]} for line in lines]
