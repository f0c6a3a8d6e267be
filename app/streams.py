"""Blueprint of the stream resource: define, list, describe, start, stop, delete."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify

from app import answers, control, openapi, validation
from app.schedule import Schedules
from app.services import get_store
from config.middleware import PREFIXES_CONTEXT
from config.streams import StreamDefinition

bp = Blueprint("streams", __name__, url_prefix="/streams")


def schedules() -> Schedules:
    return Schedules(current_app.extensions["celery"])


@bp.get("")
@openapi.document(ok=answers.StreamList, tags=("streams",))
def list_streams() -> Response:
    """List every stream with its state."""
    return jsonify({"streams": control.summary(get_store(), schedules())})


@bp.put("/<name>")
@openapi.document(json=StreamDefinition, ok=answers.StreamSaved, tags=("streams",))
def put_stream(name: str) -> tuple[Response, int]:
    """Create or replace a stream definition."""
    name = validation.stream_name(name)
    prefixes = current_app.config.get("CUSTOM_MIDDLEWARE_PREFIXES", [])
    definition = validation.body(StreamDefinition, context={PREFIXES_CONTEXT: prefixes})
    validation.source_hosts(definition, current_app.config["ALLOWED_SOURCE_HOSTS"])
    validation.interval(definition.interval_seconds)
    created = get_store().definitions.put(name, definition)
    body = {"stream": name, "created": created, "definition": definition.model_dump(mode="json")}
    return jsonify(body), 201 if created else 200


@bp.get("/<name>")
@openapi.document(ok=answers.StreamState, tags=("streams",))
def get_stream(name: str) -> Response:
    """Describe a stream: definition, state, current version, batch in progress."""
    name = validation.stream_name(name)
    return jsonify(control.describe(get_store(), schedules(), name))


@bp.delete("/<name>")
@openapi.document(status=204, tags=("streams",))
def delete_stream(name: str) -> tuple[str, int]:
    """Stop a stream and forget its definition (its data expires with its versions)."""
    name = validation.stream_name(name)
    store = get_store()
    control.require(store, name)
    schedules().remove(name)
    store.definitions.delete(name)
    return "", 204


@bp.post("/<name>/start")
@openapi.document(json=control.StartRequest, ok=answers.StreamStarted,
                  tags=("streams",))
def start_stream(name: str) -> Response:
    """Start fetching a stream periodically (idempotent)."""
    name = validation.stream_name(name)
    request = validation.body(control.StartRequest, optional=True)
    validation.interval(request.interval_seconds
                        or control.require(get_store(), name).interval_seconds)
    return jsonify(control.start(get_store(), schedules(), name, request))


@bp.post("/<name>/stop")
@openapi.document(json=control.StopRequest, ok=answers.StreamStopped,
                  tags=("streams",))
def stop_stream(name: str) -> Response:
    """Stop fetching a stream (idempotent); its data stays."""
    name = validation.stream_name(name)
    request = validation.body(control.StopRequest, optional=True)
    return jsonify(control.stop(get_store(), schedules(), name, request))
