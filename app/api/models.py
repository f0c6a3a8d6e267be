"""Answer models of the stream and batch resources, for the OpenAPI document.

Views build their answers as dicts (see `control`, `store.reader`); these models describe
them. They name the fields a client relies on and allow the rest (``extra="allow"``), so
a field added to an answer never breaks the document.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from config.streams import StreamDefinition


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class StreamSummary(_Open):
    """One line of the stream list."""

    stream: str
    state: Literal["running", "stopped"]
    interval_seconds: int | None
    next_run_at: str | None
    current_version: int | None


class StreamList(_Open):
    """One page of the streams, sorted by name."""

    streams: list[StreamSummary]
    next_cursor: str | None = Field(description="Pass as cursor for the next page; null: end.")


class StreamSaved(_Open):
    """A stream definition as stored."""

    stream: str
    created: bool
    definition: StreamDefinition


class StreamState(_Open):
    """A stream: definition, schedule state, current version, batch in flight."""

    stream: str
    state: Literal["running", "stopped"]
    current_version: int | None
    in_progress: dict[str, Any] | None
    definition: dict[str, Any]


class StreamStarted(_Open):
    """The schedule after a start."""

    stream: str
    state: Literal["running", "stopped"]
    already_running: bool
    queued_task: str | None


class StreamStopped(_Open):
    """The schedule after a stop."""

    stream: str
    state: Literal["running", "stopped"]
    was_running: bool
    cancelled_version: int | None


class Batch(_Open):
    """A batch's metadata: status, counts, times, error, change counts."""

    version: int
    status: str
    changes: dict[str, int] | None = Field(
        default=None, description="added/updated/removed against the version `from`.")


class BatchList(_Open):
    """One page of the stream's batches, newest first."""

    stream: str
    batches: list[Batch]
    next_cursor: str | None = Field(description="Pass as cursor for the next page; null: end.")


class BatchAnswer(_Open):
    """One batch."""

    stream: str
    batch: Batch


class BatchQueued(_Open):
    """A batch queued on demand (POST /run, /refresh)."""

    stream: str
    state: Literal["running", "stopped"]
    queued_task: str
    full_refresh: bool = Field(description="True when a full batch was asked for (/refresh).")
