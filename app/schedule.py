"""Periodic fetching through RedBeat schedule entries, one entry per running stream.

A stream is running exactly when its entry exists, so `state` is derived from RedBeat and
can never disagree with it. Entries are built with `RedBeatSchedulerEntry` and found with
its `generate_key` (never a hand-built key). Beat notices a new entry within
``beat_max_loop_interval``; an entry first fires one interval after it is saved, so "start"
enqueues the first fetch itself.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from celery import Celery
from celery.schedules import schedule
from redbeat import RedBeatSchedulerEntry
from redbeat.schedulers import ensure_conf, get_redis

from app.records import iso
from config import names


def entry_name(stream: str) -> str:
    """Return the RedBeat entry name of a stream."""
    return f"stream:{stream}"


class Schedules:
    """Saves, removes and describes the RedBeat entries of streams."""

    def __init__(self, celery_app: Celery) -> None:
        self.celery_app = celery_app
        ensure_conf(celery_app)

    def _key(self, stream: str) -> str:
        return RedBeatSchedulerEntry.generate_key(self.celery_app, entry_name(stream))

    def load(self, stream: str) -> RedBeatSchedulerEntry | None:
        """Return the stream's entry, or None when the stream is stopped."""
        try:
            return RedBeatSchedulerEntry.from_key(self._key(stream), app=self.celery_app)
        except KeyError:
            return None

    def save(self, stream: str, interval_seconds: int) -> RedBeatSchedulerEntry:
        """Create the entry or change its interval (its last run time is kept)."""
        every = timedelta(seconds=interval_seconds)
        entry = RedBeatSchedulerEntry(
            name=entry_name(stream), task=names.FETCH_STREAM, schedule=schedule(run_every=every),
            args=[stream], options={"queue": names.FETCH_QUEUE, "expires": interval_seconds},
            app=self.celery_app)
        return entry.save()

    def remove(self, stream: str) -> bool:
        """Delete the entry; return True if there was one."""
        entry = self.load(stream)
        if entry is None:
            return False
        entry.delete()
        return True

    def enqueue_now(self, stream: str) -> str:
        """Send one fetch of `stream` to the fetch queue now; return the task id."""
        result = self.celery_app.send_task(names.FETCH_STREAM, args=[stream],
                                           queue=names.FETCH_QUEUE)
        return str(result.id)

    def describe(self, stream: str) -> dict[str, Any]:
        """Return state, interval and next run time of a stream."""
        return _state_of(self.load(stream))

    def describe_many(self, streams: list[str]) -> dict[str, dict[str, Any]]:
        """Return `describe` of each stream, reading every entry in one round trip."""
        with get_redis(self.celery_app).pipeline(transaction=False) as pipe:
            for stream in streams:
                pipe.hmget(self._key(stream), "definition", "meta")
            replies = pipe.execute()
        return {stream: _state_of(self._entry(definition, meta))
                for stream, (definition, meta) in zip(streams, replies, strict=True)}

    def _entry(self, definition: Any, meta: Any) -> RedBeatSchedulerEntry | None:
        """Build an entry from its stored fields, as `RedBeatSchedulerEntry.from_key` does."""
        if not definition:
            return None
        fields = RedBeatSchedulerEntry.decode_definition(definition)
        decoded = RedBeatSchedulerEntry.decode_meta(meta)
        entry = RedBeatSchedulerEntry(app=self.celery_app, **{**fields, **decoded})
        entry.last_run_at = decoded["last_run_at"]
        return entry


def _state_of(entry: RedBeatSchedulerEntry | None) -> dict[str, Any]:
    """Return state, interval and next run time of a stream with this entry (or none)."""
    if entry is None:
        return {"state": "stopped", "interval_seconds": None, "next_run_at": None}
    interval = int(entry.schedule.run_every.total_seconds())
    # Not RedBeat's `due_at`: it adds the time left (counted from now) to the last run.
    due = (entry.last_run_at + entry.schedule.run_every if entry.last_run_at is not None
           else None)
    return {"state": "running", "interval_seconds": interval,
            "next_run_at": iso(due) if due is not None else None}
