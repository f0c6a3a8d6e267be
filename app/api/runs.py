"""Blueprint of batches on demand: POST /streams/<name>/run and /refresh."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify

from app import runs
from app.api import inputs, models, openapi
from app.extensions import get_store
from app.schedule import Schedules

bp = Blueprint("runs", __name__, url_prefix="/streams")


def _queue(name: str, full: bool) -> tuple[Response, int]:
    name = inputs.stream_name(name)
    schedules = Schedules(current_app.extensions["celery"])
    return jsonify(runs.run_now(get_store(), schedules, name, full=full)), 202


@bp.post("/<name>/run")
@openapi.document(ok=models.BatchQueued, status=202, tags=("streams",))
def run_stream(name: str) -> tuple[Response, int]:
    """Fetch one batch now, running or stopped; 409 while a batch is in flight."""
    return _queue(name, full=False)


@bp.post("/<name>/refresh")
@openapi.document(ok=models.BatchQueued, status=202, tags=("streams",))
def refresh_stream(name: str) -> tuple[Response, int]:
    """Fetch one full batch now (finds upstream deletions); 409 while one is in flight."""
    return _queue(name, full=True)
