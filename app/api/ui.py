"""Blueprint of the status page: the page shell and the one summary it polls.

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

from app.api import inputs, openapi
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
def overview() -> Response:
    """Summarise every stream for the status page: state, freshness, last batch."""
    now = datetime.now(UTC)
    schedules = Schedules(current_app.extensions["celery"])
    store = get_store()
    streams = [stream_summary(store, schedules, name, now)
               for name in store.definitions.names()]
    return jsonify({"now": iso(now), "flower_url": current_app.config.get("UI_FLOWER_URL"),
                    "stale_intervals": STALE_INTERVALS, "streams": streams})


def stream_summary(store: Store, schedules: Schedules, name: str, now: datetime
                   ) -> dict[str, Any]:
    """Return one stream's line of the overview."""
    definition = store.definitions.get(name)
    state = schedules.describe(name)
    version = store.reader.current_version(name)
    current = store.reader.batch_or_none(name, version) if version else None
    last = store.reader.batches(name, 1)
    interval = state["interval_seconds"] or (definition.interval_seconds if definition
                                             else None)
    published = published_at(current)
    age = (now - published).total_seconds() if published else None
    return {"stream": name, "state": state["state"], "interval_seconds": interval,
            "next_run_at": state["next_run_at"], "current_version": version,
            "published_at": iso(published) if published else None,
            "age_seconds": round(age, 3) if age is not None else None,
            "stale": is_stale(age, interval),
            "description": definition.description if definition else "",
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
