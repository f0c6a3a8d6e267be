"""The query of the paged lists: GET /streams, GET /streams/<name>/batches, /ui/overview.

Every list pages the same way: ``limit`` items (default ``DEFAULT_LIST_LIMIT``, capped at
``MAX_LIST_LIMIT``), then ``cursor=<next_cursor>`` (also in the ``Link: rel="next"``
header), optionally filtered. A filtered page examines at most ``LIST_SCAN_LIMIT`` items,
so it may hold fewer than ``limit`` and still have a next page; ``next_cursor: null``
is the end.
"""

from __future__ import annotations

from typing import Literal

from flask import current_app
from pydantic import BaseModel, ConfigDict, Field

from app import control
from app.extensions import Store
from app.schedule import Schedules
from app.store.cursors import BatchesCursor, StreamsCursor
from app.store.reader import BatchPage
from config import defaults

# A batch's status (the moves are in app/store/keys.py).
BatchStatus = Literal["running", "complete", "failed", "abandoned", "cancelled",
                      "quarantined", "discarded"]


class ListQuery(BaseModel):
    """Paging of a list: how many items, and where the previous page ended."""

    model_config = ConfigDict(extra="ignore")
    limit: int | None = Field(default=None, ge=1, le=defaults.MAX_LIST_LIMIT, description=(
        "Items per page (a filtered page may hold fewer)."))
    cursor: str | None = Field(default=None, max_length=1024,
                               description="next_cursor of the previous page.")


class StreamsQuery(ListQuery):
    """Query of GET /streams (and /ui/overview): streams sorted by name."""

    state: Literal["running", "stopped"] | None = Field(
        default=None, description="Only streams in this state.")


class BatchesQuery(ListQuery):
    """Query of GET /streams/<name>/batches: newest first."""

    status: BatchStatus | None = Field(default=None,
                                       description="Only batches with this status.")


def page_size(query: ListQuery) -> int:
    """Return the query's limit, or the default, within the configured cap."""
    config = current_app.config
    return min(query.limit or config["DEFAULT_LIST_LIMIT"], config["MAX_LIST_LIMIT"])


def streams(store: Store, schedules: Schedules, query: StreamsQuery) -> control.StreamPage:
    """Return the page of the stream list that `query` asks for."""
    return control.streams_page(
        store, schedules, limit=page_size(query), state=query.state,
        after=StreamsCursor.decode(query.cursor).after if query.cursor else None,
        scan=current_app.config["LIST_SCAN_LIMIT"])


def batches(store: Store, name: str, query: BatchesQuery) -> BatchPage:
    """Return the page of the stream's batch history that `query` asks for."""
    return store.reader.batch_page(
        name, limit=page_size(query), status=query.status,
        before=BatchesCursor.decode(query.cursor).before if query.cursor else None,
        scan=current_app.config["LIST_SCAN_LIMIT"])
