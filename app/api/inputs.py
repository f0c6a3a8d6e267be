"""Request parsing: JSON bodies into pydantic models, names and query numbers checked.

Bad input is a 4xx with the error shape, never a 500: a body nesting deeper than
``MAX_JSON_DEPTH`` is a 400 before any model sees it; a name no stream can have is a 404
where a stream is looked up and a 422 naming the rule where one would be created.
"""

from __future__ import annotations

from typing import Any, TypeVar

from flask import current_app, request
from pydantic import BaseModel, ValidationError

from app.api.error_handlers import validation_error
from app.api.suggest import with_suggestions
from app.exceptions import BadRequest, NotFound, UnsupportedMediaType, ValidationFailed
from app.hosts import source_url_errors
from config import defaults
from config.streams import STREAM_NAME_RULE, StreamDefinition, valid_stream_name

Model = TypeVar("Model", bound=BaseModel)
TOO_DEEP = object()


def stream_name(name: str) -> str:
    """Return `name` if it may name a stream; an impossible name is simply not found."""
    if not valid_stream_name(name):
        raise NotFound(f"stream {name!r} does not exist: names match {STREAM_NAME_RULE}",
                       details={"stream": name})
    return name


def new_stream_name(name: str) -> str:
    """Return `name` if a stream may be created under it, else a 422 naming the rule."""
    if not valid_stream_name(name):
        message = f"a stream name must match {STREAM_NAME_RULE}"
        raise ValidationFailed(f"invalid stream name {name!r}: {message}", details={
            "errors": [{"field": "name", "message": message, "type": "stream_name"}],
            "rule": STREAM_NAME_RULE})
    return name


def body(model: type[Model], *, optional: bool = False,
         context: dict[str, Any] | None = None) -> Model:
    """Parse the JSON body into `model` (with a validation `context`); empty optional: defaults."""
    if optional and not request.get_data(cache=True):
        return model()
    if not request.is_json:
        raise UnsupportedMediaType("the body must be JSON (Content-Type: application/json)")
    try:
        data = request.get_json(silent=True)
    except RecursionError:  # the decoder's own limit, far deeper than ours
        data = TOO_DEEP
    if data is None:
        raise BadRequest("the body is not valid JSON")
    if data is TOO_DEEP or json_depth(data) > defaults.MAX_JSON_DEPTH:
        raise BadRequest(f"the body nests arrays and objects deeper than "
                         f"{defaults.MAX_JSON_DEPTH} levels",
                         details={"max_depth": defaults.MAX_JSON_DEPTH})
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        raise with_suggestions(validation_error(exc), model, data) from None


def json_depth(value: Any) -> int:
    """Return how deep arrays and objects nest in a JSON value (a scalar is 0)."""
    deepest, pending = 0, [(value, 1)]
    while pending:
        node, depth = pending.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(
            node, list) else None
        if children is not None:
            deepest = max(deepest, depth)
            pending.extend((child, depth + 1) for child in children)
    return deepest


def source_hosts(definition: StreamDefinition, allowed_hosts: list[str]) -> None:
    """Refuse (422) a definition whose URLs the SSRF guard forbids."""
    errors = source_url_errors(definition.source, allowed_hosts)
    if errors:
        first = errors[0]
        raise ValidationFailed(f"invalid body: {first['field']}: {first['message']}",
                               details={"errors": errors})


def interval(seconds: int, field: str = "interval_seconds") -> int:
    """Return `seconds` if it lies within the configured interval bounds, else a 422."""
    low = current_app.config["MIN_INTERVAL_SECONDS"]
    high = current_app.config["MAX_INTERVAL_SECONDS"]
    if not low <= seconds <= high:
        message = f"must be between {low} and {high} seconds"
        raise ValidationFailed(f"invalid body: {field}: {message}", details={
            "errors": [{"field": field, "message": message, "type": "interval_range"}],
            "min": low, "max": high})
    return seconds


def query(model: type[Model]) -> Model:
    """Parse the query string into `model`; a bad parameter is a 400 naming it."""
    try:
        return model.model_validate(request.args.to_dict())
    except ValidationError as exc:
        failed = validation_error(exc, "query")
        raise BadRequest(failed.message, details=failed.details) from None
