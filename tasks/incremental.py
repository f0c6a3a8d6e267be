"""The worker's side of incremental streams: which kind of batch to run, and its changes.

`plan_batch` decides, when a batch starts, whether it is *full* (every record, replacing
the version: the first batch, a refresh asked for, ``full_refresh_every`` due, a changed
definition, no cursor yet) or *incremental* (only what changed since the cursor of the
current published version, merged onto it). It returns the source to fetch, with the
cursor value (less ``lag``) placed in the query, a header or the body.

`BatchPlan.split` then reads each page: it checks every record's cursor, keeps the
highest, sets tombstones aside and, in an incremental batch, skips records refetched
unchanged (at the cursor's boundary, or within the lag: same cursor value as stored).
`entries` encodes what is sent to the store; `info` is what the batch's metadata keeps,
among it the new cursor, which only becomes the stream's cursor if the batch publishes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson

from app.exceptions import UpstreamError
from app.extensions import Store
from app.records import (
    PAGE_STRIDE,
    encode,
    get_path,
    now_iso,
    parse_time,
    to_entries,
    value_score,
)
from app.store.incremental import TOMBSTONE
from app.store.locks import BatchLease
from config.incremental import Incremental, fingerprint
from config.source import Source
from config.streams import StreamDefinition
from tasks.upstream.bodies import place

FULL, INCREMENTAL = "full", "incremental"
# What get_path answers for a field a record lacks (None may be a field's real value).
ABSENT = object()


@dataclass
class BatchPlan:
    """One batch of an incremental stream: its kind, source, cursor and counts."""

    definition: StreamDefinition
    mode: str
    reason: str
    source: Source
    state: dict[str, Any]
    base: int | None = None
    sent: Any = None
    cursor: Any = None
    started: str = field(default_factory=now_iso)
    counts: dict[str, int] = field(default_factory=lambda: {
        "upserts": 0, "tombstones": 0, "skipped": 0})

    @property
    def config(self) -> Incremental:
        assert self.definition.source.incremental is not None
        return self.definition.source.incremental

    def split(self, store: Store, stream: str, records: list[Any], page: int
              ) -> tuple[list[Any], list[str]]:
        """Return the page's live records and the keys of its tombstones."""
        live, dead, boundary = [], [], []
        floor = value_score(self.state.get("cursor")) if self.mode == INCREMENTAL else None
        for position, record in enumerate(records, start=1):
            score = self._cursor_of(record, page, position)
            if self._deleted(record):
                dead.append(self._key_of(record, page, position))
                continue
            if floor is not None and score <= floor:
                boundary.append(record)
            live.append(record)
        if boundary:
            live = self._without_unchanged(store, stream, live, boundary)
        return live, dead

    def entries(self, kept: list[Any], dead: list[str], page: int
                ) -> list[tuple[float, str]]:
        """Return the entries to store: full batches as usual, changes in fetch order."""
        if self.mode == FULL:  # tombstones are simply left out of a full version
            self.counts["upserts"] += len(kept)
            self.counts["tombstones"] += len(dead)
            return to_entries(kept, page, self.definition.order_by)
        if self.definition.order_by:  # refused here as in a full batch; the store scores it
            to_entries(kept, page, self.definition.order_by)
        for position, record in enumerate(kept, start=1):
            if get_path(record, self.definition.key, None) is None:
                raise UpstreamError("key_missing", f"record {position} of page {page} (after "
                                    f"middleware) has no key {self.definition.key!r}: an "
                                    "incremental batch upserts records by key", page=page)
        self.counts["upserts"] += len(kept)
        self.counts["tombstones"] += len(dead)
        after = page * PAGE_STRIDE + len(kept)
        return [*to_entries(kept, page, None),
                *[(float(after + i), TOMBSTONE + key) for i, key in enumerate(dead)]]

    def info(self, lease: BatchLease) -> dict[str, Any]:
        """Return the batch metadata of an incremental stream's batch."""
        full = self.mode == FULL
        state = {"mode": self.mode, "reason": self.reason, "cursor": self.cursor,
                 "sent": self.sent, "fingerprint": fingerprint(self.definition),
                 "full_version": lease.version if full else self.state.get("full_version"),
                 "full_at": self.started if full else self.state.get("full_at"),
                 **self.counts}
        return {"incremental": state, **({} if full else {"base": str(self.base)})}

    def _cursor_of(self, record: Any, page: int, position: int) -> float:
        path = self.config.cursor_path
        value = get_path(record, path, None) if isinstance(record, dict) else None
        if value is None:
            raise UpstreamError("cursor_missing", f"record {position} of page {page} has no "
                                f"cursor field {path!r} (source.incremental.cursor_path)",
                                page=page)
        score = value_score(value)
        if score is None:
            raise UpstreamError("cursor_invalid", f"the cursor field {path!r} of record "
                                f"{position} of page {page} is {str(value)[:60]!r}, not a "
                                "number or an ISO-8601 time", page=page)
        highest = value_score(self.cursor) if self.cursor is not None else None
        if highest is None or score > highest:
            self.cursor = value
        return score

    def _deleted(self, record: Any) -> bool:
        path = self.config.deleted_path
        return path is not None and get_path(record, path, ABSENT) == self.config.deleted_value

    def _key_of(self, record: Any, page: int, position: int) -> str:
        key = get_path(record, self.definition.key, None)
        if key is None:
            raise UpstreamError("key_missing", f"tombstone record {position} of page {page} "
                                f"has no key {self.definition.key!r}", page=page)
        return encode(key)

    def _without_unchanged(self, store: Store, stream: str, live: list[Any],
                           boundary: list[Any]) -> list[Any]:
        """Drop records at or below the cursor whose stored copy has the same cursor."""
        keyed = {encode(key): record for record in boundary
                 if (key := get_path(record, self.definition.key, None)) is not None}
        stored = store.record_index.lookup(stream, self.base or 0, list(keyed)) or {}
        path = self.config.cursor_path
        same = set()
        for key, members in stored.items():
            old = get_path(orjson.loads(members[-1]), path, None)
            new = get_path(keyed[key], path, None)
            if old is not None and value_score(old) == value_score(new):
                same.add(id(keyed[key]))
        self.counts["skipped"] += len(same)
        return [record for record in live if id(record) not in same]


def plan_batch(store: Store, definition: StreamDefinition, lease: BatchLease
               ) -> BatchPlan | None:
    """Decide the kind of batch `lease` runs; None for a stream that is not incremental."""
    asked = store.full_refresh.take(lease.stream)
    config = definition.source.incremental
    if config is None:
        return None
    current = store.reader.current_version(lease.stream)
    meta = store.reader.batch_or_none(lease.stream, current) if current else None
    state = meta.get("incremental") if meta else None
    state = dict(state) if isinstance(state, dict) else {}
    reason = _full_reason(asked, state, definition, lease.version)
    if reason:
        return BatchPlan(definition, FULL, reason, _with_cursor(definition.source, config,
                         config.initial_value), state, sent=config.initial_value,
                         cursor=config.initial_value)
    sent = shifted(state["cursor"], config.lag)
    return BatchPlan(definition, INCREMENTAL, "cursor", _with_cursor(
        definition.source, config, sent), state, base=current, sent=sent,
        cursor=state["cursor"])


def _full_reason(asked: bool, state: dict[str, Any], definition: StreamDefinition,
                 version: int) -> str | None:
    """Return why the batch must be a full one, or None."""
    config = definition.source.incremental
    every = config.full_refresh_every if config else None
    if asked:
        return "requested"
    if not state:
        return "first"
    if state.get("fingerprint") != fingerprint(definition):
        return "definition_changed"
    if state.get("cursor") is None:
        return "no_cursor"
    since = version - int(state.get("full_version") or 0)
    if every and every.batches and since >= every.batches:
        return "full_refresh_every"
    full_at = parse_time(state.get("full_at"))
    if every and every.seconds and (full_at is None or time.time() - full_at.timestamp()
                                    >= every.seconds):
        return "full_refresh_every"
    return None


def _with_cursor(source: Source, config: Incremental, value: Any) -> Source:
    """Return `source` with the cursor value placed where the upstream expects it."""
    if value is None:
        return source
    if config.param_in == "header":
        return source.model_copy(update={"headers": {**source.headers,
                                                     config.param: str(value)}})
    if config.param_in == "body":
        return source.model_copy(update={"body": place(source.body, {config.param: value})})
    return source.model_copy(update={"params": {**source.params, config.param: value}})


def shifted(value: Any, lag: float) -> Any:
    """Return the cursor `value` moved back by `lag` (seconds of a time, units of a number),
    written the way the upstream wrote it."""
    if not lag:
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        moved = value - lag
        return int(moved) if isinstance(value, int) and float(lag).is_integer() else moved
    text = str(value)
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        moved = number - lag
        return str(int(moved)) if moved.is_integer() and "." not in text else str(moved)
    moment = datetime.fromisoformat(text) - timedelta(seconds=lag)
    fraction = text.partition(".")[2] if "T" in text or " " in text else ""
    digits = len(fraction) - len(fraction.lstrip("0123456789"))
    spec = "seconds" if digits == 0 else "milliseconds" if digits <= 3 else "microseconds"
    shown = moment.isoformat(timespec=spec)
    return shown.replace("+00:00", "Z") if text.endswith("Z") else shown

