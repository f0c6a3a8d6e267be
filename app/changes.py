"""The change feed: computed when a batch settles, served by GET /streams/<name>/changes.

The preparer `change_set` (registered in `publishing.PREPARERS`) diffs the batch against
the published one by the stream's `key` and stores the change set with the batch
(`store.changes`); its counts become the batch metadata field ``changes``. The view folds
the change sets of every version published after `since` into one net change set.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from flask import Blueprint, Response, current_app
from pydantic import BaseModel, ConfigDict, Field

from app import control, openapi, validation
from app.exceptions import BadRequest, NoCompleteBatch
from app.services import Store, get_store
from app.store.changefeed import ChangeCursor, ChangeFeed
from app.store.changes import ChangeSets
from config import defaults

if TYPE_CHECKING:
    from app.publishing import Candidate


def change_sets(store: Store) -> ChangeSets:
    return ChangeSets(store.connection, store.reader.prefix,
                      store.writer.retention.staging_ttl_ms)


def change_set(candidate: Candidate) -> dict[str, str]:
    """Store the batch's change set against the published batch; return its counts."""
    definition = candidate.definition
    if definition is None:
        return {}
    base = int(candidate.previous.get("version", 0)) if candidate.previous else 0
    diff = change_sets(candidate.store).compute(candidate.stream, candidate.version, base,
                                                definition.key)
    return {} if diff is None else {"changes": diff.to_field()}


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
@openapi.document(query=ChangesQuery, ok=ChangesPage, tags=("data",))
def read_changes(name: str) -> Response:
    """Return what changed since a version: added, updated and removed, by key."""
    name = validation.stream_name(name)
    store = get_store()
    query = validation.query(ChangesQuery)
    control.require(store, name)
    limit = min(query.limit or current_app.config["DEFAULT_PAGE_LIMIT"],
                current_app.config["MAX_PAGE_LIMIT"])
    feed = ChangeFeed(store.connection, store.reader.prefix)
    if query.cursor:
        cursor = ChangeCursor.decode(query.cursor)
        page = feed.read(name, cursor.since, cursor.to, limit=limit, after=cursor.after)
    else:
        page = feed.read(name, _since(query), _current(store, name, _since(query)),
                         limit=limit)
    body = {"stream": name, "from": page.since, "to": page.to,
            "added": [orjson.Fragment(record) for record in page.added],
            "updated": [orjson.Fragment(record) for record in page.updated],
            "removed": [orjson.Fragment(key) for key in page.removed],
            "next_cursor": page.next_cursor}
    return Response(orjson.dumps(body), mimetype="application/json",
                    headers={"X-Stream-Version": str(page.to)})


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
