"""Did-you-mean for a misspelt field of a request body: `records_pth` -> `records_path`.

A definition forbids unknown fields, so a typo is a 422. `with_suggestions` walks the
model along each unknown field's location (through nested models, lists, dicts and
tagged unions, following the body that was sent) and, when a valid field name there is
close enough, adds it to the error as ``suggestion`` and to its message.
"""

from __future__ import annotations

import difflib
import types
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel

from app.exceptions import ValidationFailed


def with_suggestions(error: ValidationFailed, model: type[BaseModel], data: Any
                     ) -> ValidationFailed:
    """Return `error` with a suggestion on each unknown field that has a close valid name."""
    errors = error.details.get("errors", [])
    for item in errors:
        if item.get("type") != "extra_forbidden":
            continue
        *parents, name = str(item["field"]).split(".")
        names = field_names(model, parents, data)
        close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
        if close:
            item["suggestion"] = close[0]
            item["message"] = f"unknown field; did you mean {close[0]!r}?"
    errors.sort(key=lambda item: "suggestion" not in item)  # the likely cause first
    if errors and "suggestion" in errors[0]:
        error.message = f"invalid body: {errors[0]['field']}: {errors[0]['message']}"
    return error


def field_names(model: type[BaseModel], path: list[str], data: Any) -> list[str]:
    """Return the field names (and aliases) valid at `path` inside `model`."""
    kind: Any = model
    for step in path:
        kind, data = _step(kind, step, data)
        if kind is None:
            return []
    found = _model(kind, data)
    if found is None:
        return []
    names = list(found.model_fields)
    names += [info.alias for info in found.model_fields.values() if info.alias]
    return names


def _model(kind: Any, data: Any) -> type[BaseModel] | None:
    """Return the model `kind` stands for, choosing a union member by the body's tag."""
    if get_origin(kind) is Annotated:
        return _model(get_args(kind)[0], data)
    if get_origin(kind) in (Union, types.UnionType):
        members = [_model(member, data) for member in get_args(kind)]
        models = [member for member in members if member is not None]
        tag = data.get("type") if isinstance(data, dict) else None
        for member in models:
            literal = member.model_fields.get("type")
            if literal is not None and tag in get_args(literal.annotation):
                return member
        return models[0] if len(models) == 1 else None
    return kind if isinstance(kind, type) and issubclass(kind, BaseModel) else None


def _step(kind: Any, step: str, data: Any) -> tuple[Any, Any]:
    """Return the type and the data one step down `step` (a field, an index or a key)."""
    while get_origin(kind) is Annotated:
        kind = get_args(kind)[0]
    if get_origin(kind) is list and step.isdigit():
        items = data if isinstance(data, list) else []
        return get_args(kind)[0], items[int(step)] if int(step) < len(items) else None
    if get_origin(kind) is dict:
        return get_args(kind)[1], data.get(step) if isinstance(data, dict) else None
    model = _model(kind, data)
    if model is None:
        return None, None
    tag = model.model_fields.get("type")
    if get_origin(kind) in (Union, types.UnionType) and tag is not None and (
            step in get_args(tag.annotation)):
        return model, data  # pydantic names the member of a tagged union by its tag
    for name, info in model.model_fields.items():
        if step in (name, info.alias):
            return info.annotation, data.get(step) if isinstance(data, dict) else None
    return None, None
