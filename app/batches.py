"""Blueprint of a stream's batch history."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from app import control, validation
from app.services import get_store

bp = Blueprint("batches", __name__, url_prefix="/streams")


@bp.get("/<name>/batches")
def list_batches(name: str) -> Response:
    """List the stream's recent batches, newest first."""
    name = validation.stream_name(name)
    store = get_store()
    control.require(store, name)
    limit = validation.query_int("limit", 50, low=1, high=500) or 50
    return jsonify({"stream": name, "batches": store.reader.batches(name, limit)})


@bp.get("/<name>/batches/<int:version>")
def get_batch(name: str, version: int) -> Response:
    """Describe one batch."""
    name = validation.stream_name(name)
    store = get_store()
    control.require(store, name)
    return jsonify({"stream": name, "batch": store.reader.batch(name, version)})
