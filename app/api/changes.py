"""GET /streams/<name>/changes: what changed since a version, by key, one page at a time.

Each change set is computed when its batch settles (`app.publish.change_set`); this view
folds the change sets of every version published after `since` into one net change set
(`app.store.changefeed`).
"""

from __future__ import annotations

from typing import Any

import orjson
from flask import Blueprint, Response, current_app
from pydantic import BaseModel, ConfigDict, Field

from app import control
from app.api import http_cache, inputs, openapi
from app.exceptions import BadRequest, NoCompleteBatch
from app.extensions import Store, get_store
from app.store.cursors import ChangeCursor
from config import defaults


class ChangesQuery(BaseModel):
    """Query of GET /streams/<name>/changes."""

    model_config = ConfigDict(extra="ignore")
    since: int | None = Field(default=None, ge=0, le=2**53, description=(
        "The version the loader holds (0: from the first version); required without "
        "a cursor."))
    limit: int | None = Field(default=None, ge=1, le=defaults.MAX_PAGE_LIMIT,
                              description="Keys per page (a page may hold fewer).")
    cursor: str | None = Field(default=None, description="next_cursor of the previous page.")


class ChangesPage(BaseModel):
    """Net changes after `from` up to `to`, one page of keys."""

    stream: str
    from_: int = Field(alias="from")
    to: int
    added: list[Any] = Field(description="Records absent at `from`, present at `to`.")
    updated: list[Any] = Field(description="Records present at both whose content changed.")
    removed: list[Any] = Field(description="Keys of records present at `from`, absent now.")
    next_cursor: str | None


bp = Blueprint("changes", __name__, url_prefix="/streams")


@bp.get("/<name>/changes")
@openapi.document(query=ChangesQuery, ok=ChangesPage, tags=("data",), conditional=True)
def read_changes(name: str) -> Response:
    """Return what changed since a version: added, updated and removed, by key."""
    name = inputs.stream_name(name)
    store = get_store()
    query = inputs.query(ChangesQuery)
    control.require(store, name)
    limit = min(query.limit or current_app.config["DEFAULT_PAGE_LIMIT"],
                current_app.config["MAX_PAGE_LIMIT"])
    if query.cursor:
        cursor = ChangeCursor.decode(query.cursor)
        since, to, after = cursor.since, cursor.to, cursor.after
    else:
        since = _since(query)
        to, after = _current(store, name, since), None
    # The versions from `since` to `to` are all published: their change sets never change.
    tag = http_cache.strong_tag(to, name, "changes", since, after, limit)
    pinned = query.cursor is not None
    headers = {"X-Stream-Version": str(to)}
    unchanged = http_cache.not_modified(tag, pinned=pinned, headers=headers)
    if unchanged is not None:
        return unchanged
    page = store.change_feed.read(name, since, to, limit=limit, after=after)
    body = {"stream": name, "from": page.since, "to": page.to,
            "added": [orjson.Fragment(record) for record in page.added],
            "updated": [orjson.Fragment(record) for record in page.updated],
            "removed": [orjson.Fragment(key) for key in page.removed],
            "next_cursor": page.next_cursor}
    response = Response(orjson.dumps(body), mimetype="application/json", headers=headers)
    http_cache.tagged(response, tag, pinned=pinned)
    return http_cache.link_next(response, page.next_cursor)


def _since(query: ChangesQuery) -> int:
    if query.since is None:
        raise BadRequest("since is required (the version you hold; 0 for everything)",
                         details={"field": "since"})
    return query.since


def _current(store: Store, name: str, since: int) -> int:
    current = store.reader.current_version(name)
    if current is None:
        raise NoCompleteBatch(name)
    if since > current:
        raise BadRequest(f"since {since} is newer than the current version {current}",
                         details={"field": "since", "current": current})
    return current
