"""Blueprint of the stream resource: define, list, describe, start, stop, run, delete."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify

from app import control, redaction
from app.api import destinations, http_cache, inputs, listing, models, openapi
from app.extensions import get_store
from app.schedule import Schedules
from config.middleware import LOCAL_REFS_CONTEXT, PREFIXES_CONTEXT
from config.source_auth import SECRET_PREFIX_CONTEXT
from config.streams import StreamDefinition

bp = Blueprint("streams", __name__, url_prefix="/streams")


def schedules() -> Schedules:
    return Schedules(current_app.extensions["celery"])


@bp.get("")
@openapi.document(query=listing.StreamsQuery, ok=models.StreamList, tags=("streams",))
def list_streams() -> Response:
    """List the streams by name, a page at a time, with their state and current version."""
    query = inputs.query(listing.StreamsQuery)
    page = listing.streams(get_store(), schedules(), query)
    response = jsonify({"streams": page.streams, "next_cursor": page.next_cursor})
    return http_cache.link_next(response, page.next_cursor)


@bp.put("/<name>")
@openapi.document(json=StreamDefinition, ok=models.StreamSaved, tags=("streams",))
def put_stream(name: str) -> tuple[Response, int]:
    """Create or replace a stream definition."""
    name = inputs.new_stream_name(name)
    config = current_app.config
    definition = inputs.body(StreamDefinition, context={
        PREFIXES_CONTEXT: config.get("CUSTOM_MIDDLEWARE_PREFIXES", []),
        SECRET_PREFIX_CONTEXT: config["SECRET_ENV_PREFIX"], LOCAL_REFS_CONTEXT: True})
    inputs.source_hosts(definition, current_app.config["ALLOWED_SOURCE_HOSTS"])
    inputs.interval(definition.interval_seconds)
    destinations.check_targets(get_store(), definition)
    created = get_store().definitions.put(name, definition)
    body = {"stream": name, "created": created,
            "definition": redaction.definition(definition.model_dump(mode="json"))}
    return jsonify(body), 201 if created else 200


@bp.get("/<name>")
@openapi.document(ok=models.StreamState, tags=("streams",), conditional=True)
def get_stream(name: str) -> Response:
    """Describe a stream: definition, state, current version, batch in progress."""
    name = inputs.stream_name(name)
    return http_cache.weakly_tagged(control.describe(get_store(), schedules(), name))


@bp.delete("/<name>")
@openapi.document(status=204, tags=("streams",))
def delete_stream(name: str) -> tuple[str, int]:
    """Stop a stream and delete it with all its data (a new stream of the name starts empty)."""
    name = inputs.stream_name(name)
    control.delete(get_store(), schedules(), name)
    return "", 204


@bp.post("/<name>/start")
@openapi.document(json=control.StartRequest, ok=models.StreamStarted,
                  tags=("streams",))
def start_stream(name: str) -> Response:
    """Start fetching a stream periodically (idempotent)."""
    name = inputs.stream_name(name)
    request = inputs.body(control.StartRequest, optional=True)
    inputs.interval(request.interval_seconds
                        or control.require(get_store(), name).interval_seconds)
    return jsonify(control.start(get_store(), schedules(), name, request))


@bp.post("/<name>/stop")
@openapi.document(json=control.StopRequest, ok=models.StreamStopped,
                  tags=("streams",))
def stop_stream(name: str) -> Response:
    """Stop fetching a stream (idempotent); its data stays."""
    name = inputs.stream_name(name)
    request = inputs.body(control.StopRequest, optional=True)
    return jsonify(control.stop(get_store(), schedules(), name, request))


@bp.post("/<name>/run")
@openapi.document(ok=models.BatchQueued, status=202, tags=("streams",))
def run_stream(name: str) -> tuple[Response, int]:
    """Fetch one batch now, running or stopped; 409 while a batch is in flight."""
    name = inputs.stream_name(name)
    return jsonify(control.run_now(get_store(), schedules(), name)), 202


@bp.post("/<name>/refresh")
@openapi.document(ok=models.BatchQueued, status=202, tags=("streams",))
def refresh_stream(name: str) -> tuple[Response, int]:
    """Fetch one full batch now (finds upstream deletions); 409 while one is in flight."""
    name = inputs.stream_name(name)
    return jsonify(control.run_now(get_store(), schedules(), name, full=True)), 202
