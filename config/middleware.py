"""Middleware specs: the `middleware` list of a stream definition, one model per type.

Each spec is tagged by `type` (a pydantic discriminated union), so an unknown type or a
bad option is a 422 naming the middleware's index and field at PUT time. A `validate`
schema may refer only to itself (`non_local_refs`): a ``$ref`` to a URL, file or data URI
is a 422 (the views ask with `LOCAL_REFS_CONTEXT`), and the worker's validator has no way
to load one either. Custom
middleware is loaded by dotted path only from module prefixes the server allows
(``CUSTOM_MIDDLEWARE_PREFIXES``); the PUT view passes them in the validation context.
"""

from __future__ import annotations

import importlib
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from config.condition import Condition

FieldPath = Annotated[str, Field(min_length=1, max_length=256)]
Fields = Annotated[list[FieldPath], Field(min_length=1, max_length=500)]
CONTEXT_FIELDS = ("_fetched_at", "_batch_version", "_source_url", "_stream", "_page")
CastType = Literal["int", "float", "bool", "string", "datetime"]
# A dotted path of at least two names, none of them a dunder (no `x.__class__` tricks).
DOTTED = re.compile(r"^(?!(.*\.)?__)[A-Za-z_]\w*(\.[A-Za-z_]\w*)+$")
# Keywords by which a JSON Schema refers to another schema; only "#..." values are allowed.
REF_KEYWORDS = frozenset({"$ref", "$dynamicRef", "$recursiveRef"})
# Key of the validation context that asks for the $ref check (True for new definitions).
LOCAL_REFS_CONTEXT = "local_refs_only"
# Key of the validation context holding the allowed module prefixes (a list of str).
PREFIXES_CONTEXT = "custom_middleware_prefixes"


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SelectSpec(Spec):
    """Keep only the listed fields (dotted paths reach into nested objects)."""

    type: Literal["select"]
    fields: Fields


class DropSpec(Spec):
    """Remove the listed fields."""

    type: Literal["drop"]
    fields: Fields


class RenameSpec(Spec):
    """Rename fields: {"old": "new"}; a missing field is left alone."""

    type: Literal["rename"]
    fields: Annotated[dict[str, FieldPath], Field(min_length=1, max_length=500)]


class AddFieldsSpec(Spec):
    """Add constant fields and batch-context fields to every record."""

    type: Literal["add_fields"]
    fields: dict[str, Any] = Field(default_factory=dict, max_length=100)
    context: list[Literal[CONTEXT_FIELDS]] = Field(default_factory=list)  # type: ignore[valid-type]


class FilterSpec(Spec):
    """Keep the records for which `condition` holds."""

    type: Literal["filter"]
    condition: Condition


class FlattenSpec(Spec):
    """Flatten nested objects into `a__b` columns, `max_depth` levels deep."""

    type: Literal["flatten"]
    max_depth: int = Field(default=3, ge=1, le=20)
    separator: str = Field(default="__", min_length=1, max_length=8)


class CastSpec(Spec):
    """Cast fields to a type; a value that cannot be cast follows `on_error`."""

    type: Literal["cast"]
    fields: Annotated[dict[str, CastType], Field(min_length=1, max_length=500)]
    on_error: Literal["drop", "null", "keep", "fail"] = "drop"


class DedupeSpec(Spec):
    """Keep one record per key within a batch: the first or the last seen."""

    type: Literal["dedupe"]
    key: list[FieldPath] | None = Field(
        default=None, min_length=1, max_length=20,
        description="Dotted paths forming the key; default: the stream's `key`.")
    keep: Literal["first", "last"] = "first"


class ValidateSpec(Spec):
    """Check each record against a JSON Schema; invalid ones follow `on_invalid`."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True,
                              serialize_by_alias=True)

    type: Literal["validate"]
    json_schema: dict[str, Any] = Field(alias="schema")
    on_invalid: Literal["drop", "quarantine", "fail"] = "drop"

    @field_validator("json_schema")
    @classmethod
    def _schema_is_valid(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        from jsonschema import exceptions, validators

        # Checked for new definitions (PUT, load-streams), so one stored before still loads;
        # the worker refuses to build its validator either way.
        strict = isinstance(info.context, dict) and info.context.get(LOCAL_REFS_CONTEXT)
        outside = non_local_refs(value) if strict else []
        if outside:
            where, ref = outside[0]
            raise ValueError(f"{where or '/'}: $ref {ref!r} points outside the schema; only "
                             "references inside it ('#...') are allowed (nothing is fetched)")
        try:
            validators.validator_for(value).check_schema(value)
        except exceptions.SchemaError as exc:
            raise ValueError(f"not a valid JSON Schema: {exc.message}") from None
        return value


class CustomSpec(Spec):
    """A middleware class or function named by dotted path, from an allowed module."""

    type: Literal["custom"]
    path: str = Field(min_length=3, max_length=256)
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("path")
    @classmethod
    def _path_is_allowed(cls, value: str, info: ValidationInfo) -> str:
        if isinstance(info.context, dict) and PREFIXES_CONTEXT in info.context:
            import_custom(value, info.context[PREFIXES_CONTEXT])
        elif not DOTTED.match(value):
            raise ValueError("must be a dotted path such as 'package.module.name'")
        return value


MiddlewareSpec = Annotated[
    SelectSpec | DropSpec | RenameSpec | AddFieldsSpec | FilterSpec | FlattenSpec | CastSpec
    | DedupeSpec | ValidateSpec | CustomSpec,
    Field(discriminator="type")]


def non_local_refs(schema: Any) -> list[tuple[str, str]]:
    """Return (JSON pointer, reference) of every $ref that does not start with '#'.

    A reference to anything else (``http:``, ``file:``, ``data:``, a relative path) would
    make the validator load a document from outside the definition.
    """
    found, pending = [], [("", schema)]
    while pending:
        where, node = pending.pop()
        if isinstance(node, dict):
            for key, item in node.items():
                if key in REF_KEYWORDS and not (isinstance(item, str) and item.startswith("#")):
                    found.append((where, str(item)))
                pending.append((f"{where}/{key}", item))
        elif isinstance(node, list):
            pending.extend((f"{where}/{index}", item) for index, item in enumerate(node))
    return sorted(found)


def allowed_path(path: str, prefixes: list[str] | tuple[str, ...]) -> bool:
    """Tell whether dotted `path` lies under one of the allowed module `prefixes`."""
    return bool(DOTTED.match(path)) and any(
        path.startswith(prefix.rstrip(".") + ".") for prefix in prefixes if prefix.strip("."))


def import_custom(path: str, prefixes: list[str] | tuple[str, ...]) -> Any:
    """Import the callable at `path`; ValueError when not allowed, missing or not callable."""
    if not allowed_path(path, prefixes):
        allowed = ", ".join(prefixes) if prefixes else "none are allowed"
        raise ValueError(f"{path!r} is not under an allowed module prefix "
                         f"(CUSTOM_MIDDLEWARE_PREFIXES: {allowed})")
    module_name, _, attribute = path.rpartition(".")
    try:
        target = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"cannot import {path!r}: {exc}") from None
    if not callable(target):
        raise ValueError(f"{path!r} is not a class or function")
    return target
