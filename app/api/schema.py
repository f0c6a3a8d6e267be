"""Blueprint of a stream's record schema: the one inferred for its published batch."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from app import control
from app.api import inputs
from app.exceptions import NoCompleteBatch
from app.extensions import get_store

bp = Blueprint("schema", __name__, url_prefix="/streams")


@bp.get("/<name>/schema")
def get_schema(name: str) -> Response:
    """Return the schema of the current (or ?version=) batch and its drift."""
    name = inputs.stream_name(name)
    store = get_store()
    control.require(store, name)
    version = inputs.query_int("version", None, low=1, high=2**53)
    if version is None:
        version = store.reader.current_version(name)
        if version is None:
            raise NoCompleteBatch(name)
    batch = store.reader.batch(name, version)
    return jsonify({"stream": name, "version": version, "status": batch.get("status"),
                    "schema": batch.get("schema"), "drift": batch.get("schema_drift")})
