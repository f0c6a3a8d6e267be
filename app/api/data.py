"""Blueprint of a stream's data: pages of the current (or a pinned) complete version, a
score range of it when the stream has `order_by`, or the whole of it streamed as NDJSON/CSV.
"""

from __future__ import annotations

from math import isfinite
from typing import Any, Literal

import orjson
from flask import Blueprint, Response, current_app, request, stream_with_context
from pydantic import BaseModel, ConfigDict, Field

from app import control
from app.api import export, http_cache, inputs, openapi
from app.exceptions import BadRequest
from app.extensions import get_store
from app.records import value_score
from app.store.cursors import Cursor, Window
from app.store.reader import RecordPage
from config import defaults
from config.streams import StreamDefinition

bp = Blueprint("data", __name__, url_prefix="/streams")
FORMATS = {"json": "application/json", "ndjson": export.NDJSON, "csv": export.CSV}


class DataQuery(BaseModel):
    """Query of GET /streams/<name>/data."""

    model_config = ConfigDict(extra="ignore")
    limit: int | None = Field(default=None, ge=1, le=defaults.MAX_PAGE_LIMIT,
                              description="Records per JSON page.")
    version: int | None = Field(default=None, ge=1, le=2**53,
                                description="A pinned version (default: the current one).")
    cursor: str | None = Field(default=None, description="next_cursor of the previous page.")
    format: Literal["json", "ndjson", "csv"] | None = Field(
        default=None, description="json pages (default), or the whole version streamed as "
                                  "ndjson or csv (also chosen by the Accept header).")
    min: str | None = Field(default=None, max_length=64, description=(
        "Lowest value of the order_by field (number or ISO-8601 time), inclusive."))
    max: str | None = Field(default=None, max_length=64, description=(
        "Highest value of the order_by field (number or ISO-8601 time), inclusive."))
    order: Literal["asc", "desc"] = Field(default="asc", description="Order of the records.")


class DataPage(BaseModel):
    """One page of records of one version."""

    stream: str
    version: int
    records: list[Any]
    next_cursor: str | None = Field(description="Pass as cursor for the next page; null: end.")


@bp.get("/<name>/data")
@openapi.document(query=DataQuery, ok=DataPage, tags=("data",), conditional=True)
def read_data(name: str) -> Response:
    """Return one page of records, or stream the whole version as NDJSON or CSV."""
    name = inputs.stream_name(name)
    store = get_store()
    query = inputs.query(DataQuery)
    # Only a score range needs the definition (its order_by); a plain page does not parse it.
    ranged = bool(query.min or query.max)
    window = _window(query, control.require(store, name) if ranged else None)
    kind = query.format or _accepted()
    if kind != "json":
        control.require(store, name)
        return _export(name, kind, query.version, window)
    config = current_app.config
    limit = min(query.limit or config["DEFAULT_PAGE_LIMIT"], config["MAX_PAGE_LIMIT"])
    cursor = Cursor.decode(query.cursor) if query.cursor else None
    page = store.reader.read(name, limit=limit, cursor=cursor, version=query.version,
                             window=window)
    # A pinned page is named by its cursor (or version), offset, window and size.
    tag = http_cache.strong_tag(page.version, name, "page", cursor.offset if cursor else 0,
                                limit, cursor.window if cursor else window)
    pinned = cursor is not None or query.version is not None
    headers = {"X-Stream-Version": str(page.version), "Vary": "Accept"}
    unchanged = http_cache.not_modified(tag, pinned=pinned, headers=headers)
    if unchanged is not None:
        return unchanged
    response = Response(_page_body(name, page), mimetype="application/json", headers=headers)
    http_cache.tagged(response, tag, pinned=pinned)
    return http_cache.link_next(response, page.next_cursor)


def _page_body(name: str, page: RecordPage) -> bytes:
    """Return the JSON of a page: {"stream", "version", "records", "next_cursor"}.

    Each member is a record's canonical JSON already, so the records are joined as they
    are stored, never parsed or encoded again.
    """
    records = ",".join(page.records).encode()
    return b"".join((b'{"stream":', orjson.dumps(name), b',"version":', b"%d" % page.version,
                     b',"records":[', records, b'],"next_cursor":',
                     orjson.dumps(page.next_cursor), b"}"))


def _accepted() -> str:
    if request.headers.get("Accept", "*/*") in ("*/*", "", "application/json"):
        return "json"  # what best_match answers to these, without parsing them
    best = request.accept_mimetypes.best_match(list(FORMATS.values()), "application/json")
    return {mimetype: kind for kind, mimetype in FORMATS.items()}.get(best or "", "json")


def _window(query: DataQuery, definition: StreamDefinition | None) -> Window:
    """Return the score range and direction the query asks for."""
    if (query.min or query.max) and not (definition and definition.order_by):
        raise BadRequest("min and max need a stream with order_by",
                         details={"field": "min" if query.min else "max"})
    return Window(_score("min", query.min), _score("max", query.max), query.order == "desc")


def _score(field: str, text: str | None) -> float | None:
    if not text:
        return None
    score = value_score(text)
    if score is None or not isfinite(score):
        raise BadRequest(f"{field} must be a number or an ISO-8601 time",
                         details={"field": field})
    return score


def _export(name: str, kind: str, version: int | None, window: Window) -> Response:
    """Stream a whole version (or its window) in chunks."""
    reader = get_store().reader
    pinned = version is not None
    version = reader.resolve(name, version)
    start, stop = reader.span(name, version, window)
    tag = http_cache.strong_tag(version, name, kind, window)
    headers: dict[str, Any] = {"X-Stream-Version": str(version), "Vary": "Accept"}
    unchanged = http_cache.not_modified(tag, pinned=pinned, headers=headers)
    if unchanged is not None:
        return unchanged  # before a single record is read
    headers["X-Record-Count"] = str(stop - start)
    if kind == "csv":
        headers["Content-Disposition"] = f'attachment; filename="{name}-v{version}.csv"'
    rows = export.ndjson if kind == "ndjson" else export.csv_rows
    response = Response(stream_with_context(rows(reader, name, version, window)),
                        mimetype=FORMATS[kind], headers=headers)
    return http_cache.tagged(response, tag, pinned=pinned)
