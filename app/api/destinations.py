"""Blueprint of destinations: define, list, describe and delete them, and force a reload.

A definition names its credentials by environment variable only, so every answer can be
shown as it is stored: no secret is ever part of one.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify
from pydantic import BaseModel, ConfigDict

from app import control, delivery
from app.api import inputs, openapi
from app.exceptions import Conflict, NotFound, ValidationFailed
from app.extensions import Store, get_celery, get_store
from config.destinations import DestinationDefinition, valid_destination_name
from config.source_auth import SECRET_PREFIX_CONTEXT
from config.streams import StreamDefinition

bp = Blueprint("destinations", __name__)


class DestinationAnswer(BaseModel):
    """A destination as stored, with the streams delivered to it."""

    model_config = ConfigDict(extra="allow")
    destination: str
    definition: DestinationDefinition
    streams: list[str]


class DestinationList(BaseModel):
    """Every destination."""

    destinations: list[DestinationAnswer]


class ReloadAnswer(BaseModel):
    """A full reload asked for; the delivery runs on the deliver queue."""

    model_config = ConfigDict(extra="allow")
    stream: str
    destination: str
    reload_pending: bool


def destination_name(name: str) -> str:
    """Return `name` if it may name a destination; an impossible name is simply not found."""
    if not valid_destination_name(name):
        raise NotFound(f"destination {name!r} does not exist", details={"destination": name})
    return name


def _streams_of(store: Store, name: str) -> list[str]:
    streams = []
    for stream in store.definitions.names():
        definition = store.definitions.get(stream)
        if definition and any(t.destination == name for t in definition.deliver_to):
            streams.append(stream)
    return streams


def _answer(store: Store, name: str, definition: DestinationDefinition) -> dict[str, Any]:
    return {"destination": name, "definition": definition.model_dump(mode="json"),
            "streams": _streams_of(store, name)}


def _require(store: Store, name: str) -> DestinationDefinition:
    found = store.destinations.get(destination_name(name))
    if found is None:
        raise NotFound(f"destination {name!r} does not exist", details={"destination": name})
    return found


def check_targets(store: Store, definition: StreamDefinition) -> None:
    """Refuse (422) a stream definition that delivers to an undefined destination."""
    for index, target in enumerate(definition.deliver_to):
        if store.destinations.get(target.destination) is None:
            field = f"deliver_to.{index}.destination"
            message = f"destination {target.destination!r} is not defined (PUT /destinations)"
            raise ValidationFailed(f"invalid body: {field}: {message}", details={
                "errors": [{"field": field, "message": message, "type": "unknown_destination"}]})


@bp.get("/destinations")
@openapi.document(ok=DestinationList, tags=("destinations",))
def list_destinations() -> Response:
    """List every destination."""
    store = get_store()
    return jsonify({"destinations": [_answer(store, name, definition)
                                     for name, definition in store.destinations.all().items()]})


@bp.get("/destinations/<name>")
@openapi.document(ok=DestinationAnswer, tags=("destinations",))
def get_destination(name: str) -> Response:
    """Describe a destination."""
    store = get_store()
    return jsonify(_answer(store, name, _require(store, name)))


@bp.put("/destinations/<name>")
@openapi.document(json=DestinationDefinition, ok=DestinationAnswer, created=True,
                  tags=("destinations",))
def put_destination(name: str) -> tuple[Response, int]:
    """Create or replace a destination (credentials by environment-variable name only)."""
    name = destination_name(name)
    definition = inputs.body(DestinationDefinition, context={
        SECRET_PREFIX_CONTEXT: current_app.config["SECRET_ENV_PREFIX"]})
    store = get_store()
    created = store.destinations.put(name, definition)
    return jsonify({**_answer(store, name, definition), "created": created}), \
        201 if created else 200


@bp.delete("/destinations/<name>")
@openapi.document(status=204, tags=("destinations",))
def delete_destination(name: str) -> tuple[str, int]:
    """Forget a destination no stream delivers to (its tables stay where they are)."""
    store = get_store()
    _require(store, name)
    streams = _streams_of(store, name)
    if streams:
        raise Conflict(f"streams still deliver to {name!r}: {', '.join(streams)}",
                       details={"destination": name, "streams": streams})
    store.destinations.delete(name)
    return "", 204


@bp.post("/streams/<stream>/destinations/<name>/reload")
@openapi.document(ok=ReloadAnswer, tags=("destinations",))
def reload_destination(stream: str, name: str) -> Response:
    """Replace the destination's table with the current version at the next delivery."""
    store = get_store()
    definition = control.require(store, inputs.stream_name(stream))
    if not any(t.destination == destination_name(name) for t in definition.deliver_to):
        raise NotFound(f"stream {stream!r} does not deliver to {name!r}",
                       details={"stream": stream, "destination": name})
    store.delivery_states.ask_reload(stream, name)
    delivery.send(get_celery(), stream, name)
    return jsonify({"stream": stream, "destination": name, "reload_pending": True})
