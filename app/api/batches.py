"""Blueprint of a stream's batch history."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from app import control
from app.api import http_cache, inputs, listing, models, openapi
from app.exceptions import Conflict
from app.extensions import Store, get_store

bp = Blueprint("batches", __name__, url_prefix="/streams")


@bp.get("/<name>/batches")
@openapi.document(query=listing.BatchesQuery, ok=models.BatchList, tags=("batches",))
def list_batches(name: str) -> Response:
    """List the stream's batches, newest first, a page at a time."""
    name = inputs.stream_name(name)
    store = get_store()
    query = inputs.query(listing.BatchesQuery)
    control.require(store, name)
    page = listing.batches(store, name, query)
    response = jsonify({"stream": name, "batches": page.batches,
                        "next_cursor": page.next_cursor})
    return http_cache.link_next(response, page.next_cursor)


def _batch_of(name: str, version: int) -> tuple[str, Store]:
    """Return the checked stream name and the store, once the batch is known to exist."""
    name = inputs.stream_name(name)
    store = get_store()
    control.require(store, name)
    store.reader.batch(name, version)
    return name, store


@bp.get("/<name>/batches/<int:version>")
@openapi.document(ok=models.BatchAnswer, tags=("batches",))
def get_batch(name: str, version: int) -> Response:
    """Describe one batch."""
    name, store = _batch_of(name, version)
    return jsonify({"stream": name, "batch": store.reader.batch(name, version)})


@bp.post("/<name>/batches/<int:version>/publish")
@openapi.document(ok=models.BatchAnswer, tags=("batches",))
def publish_batch(name: str, version: int) -> Response:
    """Publish a quarantined batch by hand (it must still be newer than the current)."""
    name, store = _batch_of(name, version)
    verdict = store.writer.publish_quarantined(name, version)
    if verdict != "published":
        raise Conflict(f"batch {version} cannot be published: {verdict}",
                       details={"stream": name, "version": version, "verdict": verdict})
    return jsonify({"stream": name, "batch": store.reader.batch(name, version)})


@bp.post("/<name>/batches/<int:version>/discard")
@openapi.document(ok=models.BatchAnswer, tags=("batches",))
def discard_batch(name: str, version: int) -> Response:
    """Discard a quarantined batch; its records expire after the grace period."""
    name, store = _batch_of(name, version)
    status = store.writer.discard(name, version)
    if status != "discarded":
        raise Conflict(f"batch {version} is {status}, only a quarantined batch can be "
                       "discarded", details={"stream": name, "version": version,
                                             "status": status})
    return jsonify({"stream": name, "batch": store.reader.batch(name, version)})
