"""Blueprint of the status page: the page shell and the summary it polls, a page at a time.

The shell (HTML, CSS and a small script under ``app/static/ui/``) holds no data, so a
browser can load it before it knows a token; every figure on the page comes from JSON reads
(``/ui/overview``, ``/streams/...``) sent with the token the user typed into the page.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, redirect, send_from_directory
from werkzeug.wrappers import Response as BaseResponse

from app import control
from app.api import http_cache, inputs, listing, openapi
from app.extensions import Store, get_store
from app.records import iso, parse_time
from app.schedule import Schedules

bp = Blueprint("ui", __name__)

SHELL_DIR = Path(__file__).resolve().parent.parent / "static" / "ui"
# Endpoints that serve the data-free page shell; the auth hook lets these through.
PUBLIC_ENDPOINTS = frozenset({"ui.index", "ui.stream_page", "static"})
# Fields of the last batch that the overview repeats (others: see /streams/<n>/batches).
LAST_BATCH_FIELDS = ("version", "status", "records", "started_at", "finished_at", "error",
                     "quarantine_reason")
# A version is stale when it is older than this many intervals.
STALE_INTERVALS = 2


@bp.get("/")
def index() -> Response:
    """Serve the status page shell."""
    response = send_from_directory(SHELL_DIR, "index.html", max_age=0)
    response.headers["Cache-Control"] = "no-cache"
    response.headers["Content-Security-Policy"] = openapi.SAME_ORIGIN_ONLY
    return response


@bp.get("/ui/streams/<name>")
def stream_page(name: str) -> BaseResponse:
    """Send a browser to the stream's view of the status page."""
    return redirect(f"/#/streams/{inputs.stream_name(name)}", code=302)


@bp.get("/ui/overview")
@openapi.document(query=listing.StreamsQuery, tags=("ui",))
def overview() -> Response:
    """Summarise a page of streams for the status page: state, freshness, last batch."""
    query = inputs.query(listing.StreamsQuery)
    store = get_store()
    page = listing.streams(store, Schedules(current_app.extensions["celery"]), query)
    response = _overview(store, page.streams, page.next_cursor)
    return http_cache.link_next(response, page.next_cursor)


@bp.get("/ui/overview/<name>")
def stream_overview(name: str) -> Response:
    """Summarise one stream as a line of the overview (the stream's page)."""
    name = inputs.stream_name(name)
    store = get_store()
    control.require(store, name)
    schedules = Schedules(current_app.extensions["celery"])
    line = {"stream": name, **schedules.describe(name),
            "current_version": store.reader.current_version(name)}
    return _overview(store, [line], None)


def _overview(store: Store, lines: list[dict[str, Any]], next_cursor: str | None
              ) -> Response:
    now = datetime.now(UTC)
    definitions = store.definitions.raw_many([line["stream"] for line in lines])
    streams = [stream_summary(store, line, definitions.get(line["stream"]), now)
               for line in lines]
    return jsonify({"now": iso(now), "flower_url": current_app.config.get("UI_FLOWER_URL"),
                    "stale_intervals": STALE_INTERVALS, "total": store.definitions.count(),
                    "streams": streams, "next_cursor": next_cursor})


def stream_summary(store: Store, line: dict[str, Any], definition: dict[str, Any] | None,
                   now: datetime) -> dict[str, Any]:
    """Return one stream's line of the overview, from its line of the stream list."""
    name, version = line["stream"], line["current_version"]
    current = store.reader.batch_or_none(name, version) if version else None
    last = store.reader.batches(name, 1)
    interval = line["interval_seconds"] or (definition or {}).get("interval_seconds")
    published = published_at(current)
    age = (now - published).total_seconds() if published else None
    return {**line, "interval_seconds": interval,
            "published_at": iso(published) if published else None,
            "age_seconds": round(age, 3) if age is not None else None,
            "stale": is_stale(age, interval),
            "description": (definition or {}).get("description") or "",
            "last_batch": ({key: last[0][key] for key in LAST_BATCH_FIELDS if key in last[0]}
                           if last else None),
            "in_progress": store.reader.in_progress(name)}


def published_at(batch: dict[str, Any] | None) -> datetime | None:
    """Return when a batch became the current version (published, else finished)."""
    if not batch:
        return None
    return parse_time(batch.get("published_at") or batch.get("finished_at"))


def is_stale(age_seconds: float | None, interval_seconds: int | None) -> bool:
    """Tell whether a version of this age is older than STALE_INTERVALS x the interval."""
    if age_seconds is None or not interval_seconds:
        return False
    return age_seconds > STALE_INTERVALS * interval_seconds
