"""Request parsing: JSON bodies into pydantic models, names and query numbers checked."""

from __future__ import annotations

from typing import Any, TypeVar

from flask import current_app, request
from pydantic import BaseModel, ValidationError

from app.api.error_handlers import validation_error
from app.api.suggest import with_suggestions
from app.exceptions import BadRequest, NotFound, UnsupportedMediaType, ValidationFailed
from app.hosts import source_url_errors
from config.streams import StreamDefinition, valid_stream_name

Model = TypeVar("Model", bound=BaseModel)


def stream_name(name: str) -> str:
    """Return `name` if it may name a stream; an impossible name is simply not found."""
    if not valid_stream_name(name):
        raise NotFound(f"stream {name!r} does not exist: names match "
                       "^[a-z0-9][a-z0-9_-]{0,63}$", details={"stream": name})
    return name


def body(model: type[Model], *, optional: bool = False,
         context: dict[str, Any] | None = None) -> Model:
    """Parse the JSON body into `model` (with a validation `context`); empty optional: defaults."""
    if optional and not request.get_data(cache=True):
        return model()
    if not request.is_json:
        raise UnsupportedMediaType("the body must be JSON (Content-Type: application/json)")
    data = request.get_json(silent=True)
    if data is None:
        raise BadRequest("the body is not valid JSON")
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        raise with_suggestions(validation_error(exc), model, data) from None


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


def query_int(name: str, default: int | None, *, low: int, high: int) -> int | None:
    """Return the integer query parameter `name`, checked against [low, high]."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be an integer", details={"field": name}) from None
    if not low <= value <= high:
        raise BadRequest(f"{name} must be between {low} and {high}",
                         details={"field": name, "min": low, "max": high})
    return value


def query(model: type[Model]) -> Model:
    """Parse the query string into `model`; a bad parameter is a 400 naming it."""
    try:
        return model.model_validate(request.args.to_dict())
    except ValidationError as exc:
        failed = validation_error(exc, "query")
        raise BadRequest(failed.message, details=failed.details) from None
