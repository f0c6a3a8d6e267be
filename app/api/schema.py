"""Blueprint of a stream's record schema: the one inferred for a batch, and its drift.

The worker infers the schema of every batch it fetches (`tasks.schema_infer`); the publish
step stores its drift against the published batch (`app.publish.drift`). This view serves
both for the current version, or for any batch still in the history.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify
from pydantic import BaseModel, ConfigDict, Field

from app import control
from app.api import http_cache, inputs, openapi
from app.extensions import get_store

bp = Blueprint("schema", __name__, url_prefix="/streams")


class SchemaQuery(BaseModel):
    """Query of GET /streams/<name>/schema."""

    model_config = ConfigDict(extra="ignore")
    version: int | None = Field(default=None, ge=1, le=2**53, description=(
        "A batch still in the history (default: the current version)."))


class SchemaAnswer(BaseModel):
    """The inferred schema of one batch and its drift against the version it replaced."""

    stream: str
    version: int
    status: str | None = Field(description="The batch's status (complete, quarantined, ...).")
    schema_: dict[str, Any] | None = Field(alias="schema", description=(
        '{"records": n, "fields": {path: {"types": [...], "nullable": bool}}}'))
    drift: dict[str, Any] | None = Field(description=(
        "Fields added, removed and changed against the replaced version; null if none."))


@bp.get("/<name>/schema")
@openapi.document(query=SchemaQuery, ok=SchemaAnswer, tags=("data",), conditional=True)
def get_schema(name: str) -> Response:
    """Return the schema of the current (or ?version=) batch and its drift."""
    name = inputs.stream_name(name)
    store = get_store()
    control.require(store, name)
    query = inputs.query(SchemaQuery)
    version = store.reader.resolve(name, query.version)
    batch = store.reader.batch(name, version)
    status = batch.get("status")
    if status == "running":  # its schema arrives while it runs: nothing to tag yet
        return http_cache.cache_control(_answer(name, version, batch), pinned=False)
    # A batch's schema and drift are written once it ends; only its status may still move
    # (quarantined -> complete or discarded), so the status is part of the tag.
    tag = http_cache.strong_tag(version, name, "schema", status)
    pinned = query.version is not None and status != "quarantined"
    unchanged = http_cache.not_modified(tag, pinned=pinned)
    if unchanged is not None:
        return unchanged
    return http_cache.tagged(_answer(name, version, batch), tag, pinned=pinned)


def _answer(name: str, version: int, batch: dict[str, Any]) -> Response:
    return jsonify({"stream": name, "version": version, "status": batch.get("status"),
                    "schema": batch.get("schema"), "drift": batch.get("schema_drift")})
