"""The stream definition: the public contract of `PUT /streams/<name>`.

A definition names an upstream (`source`), the record identity (`key`) and the fetch
interval. `load_streams_file` reads definitions from a YAML or JSON file at start-up.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from config import defaults
from config.destinations import DeliverTo
from config.middleware import MiddlewareSpec
from config.source import Source

# Matched whole (fullmatch): with `match`, "$" would also accept a name ending in "\n".
STREAM_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
# The rule as told to users.
STREAM_NAME_RULE = "^[a-z0-9][a-z0-9_-]{0,63}$"


class PublishGate(BaseModel):
    """When a whole batch is kept as `quarantined` instead of being published."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    allow_empty: bool = Field(default=False,
                              description="Publish a batch with no records.")
    max_drop_ratio: float | None = Field(
        default=defaults.MAX_DROP_RATIO, ge=0, le=1,
        description="Quarantine a batch holding fewer than (1 - ratio) x the previous "
                    "version's records (default 0.5: losing more than half); null turns "
                    "the gate off.")


class BatchLimits(BaseModel):
    """The budget of one batch: a batch over it fails as `too_large`, before it fills Redis."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_records: int = Field(default=defaults.BATCH_MAX_RECORDS, ge=1,
                             description="Most records one batch may hold.")
    max_bytes: int = Field(default=defaults.BATCH_MAX_BYTES, ge=1,
                           description="Most bytes of records (canonical JSON) one batch "
                                       "may hold.")


class StreamDefinition(BaseModel):
    """A named upstream that data-streams keeps a fresh, versioned copy of."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: Source
    key: str = Field(default="id", min_length=1, max_length=256,
                     description="Dotted path to the field that identifies a record. Every record "
                                 "must have it (a batch with a record without it fails, "
                                 "`missing_key`); a batch holds one record per key, "
                                 "the last one.")
    interval_seconds: int = Field(default=defaults.DEFAULT_INTERVAL_SECONDS,
                                  ge=defaults.MIN_INTERVAL_SECONDS,
                                  le=defaults.MAX_INTERVAL_SECONDS)
    order_by: str | None = Field(
        default=None, max_length=256,
        description="Dotted path to a numeric or ISO-8601 time field that orders records; "
                    "default: the order of the upstream.")
    description: str = Field(default="", max_length=1000)
    publish_gate: PublishGate = Field(default_factory=PublishGate)
    batch_limits: BatchLimits = Field(default_factory=BatchLimits)
    middleware: list[MiddlewareSpec] = Field(
        default_factory=list, max_length=50,
        description="Ordered record transforms the worker applies to every page "
                    "(README, Middleware).")
    on_schema_drift: Literal["ignore", "quarantine"] = Field(
        default="ignore",
        description="Quarantine a batch whose schema differs from the published one.")
    deliver_to: DeliverTo = Field(default_factory=list)

    @field_validator("middleware")
    @classmethod
    def _tombstone_keys_stay(cls, middleware: list[MiddlewareSpec], info: ValidationInfo
                             ) -> list[MiddlewareSpec]:
        """Tombstones are matched by the key read before middleware: it must not change."""
        source, key = info.data.get("source"), info.data.get("key")
        incremental = source.incremental if source is not None else None
        if incremental is None or incremental.deleted_path is None:
            return middleware
        for index, spec in enumerate(middleware):
            fields = getattr(spec, "fields", None)
            if spec.type in ("rename", "cast", "drop") and key in (fields or {}):
                raise ValueError(f"middleware {index} ({spec.type}) changes the key field "
                                 f"{key!r}, but tombstones (source.incremental."
                                 "deleted_path) are matched on the key as the upstream "
                                 "sends it")
        return middleware


def valid_stream_name(name: str) -> bool:
    """Tell whether `name` may name a stream (it becomes part of Redis keys and URLs)."""
    return STREAM_NAME.fullmatch(name) is not None


def load_streams_file(path: str | Path, context: dict[str, Any] | None = None
                      ) -> dict[str, StreamDefinition]:
    """Read `{"streams": {name: definition}}` from YAML or JSON; ${VARS} are expanded.

    `context` is the validation context of the models (e.g. the secret variable prefix).
    """
    text = os.path.expandvars(Path(path).read_text(encoding="utf-8"))
    raw: Any = yaml.safe_load(text) or {}
    streams = raw.get("streams", {}) if isinstance(raw, dict) else {}
    result: dict[str, StreamDefinition] = {}
    for name, body in streams.items():
        if not valid_stream_name(str(name)):
            raise ValueError(f"invalid stream name in {path}: {name!r}")
        result[str(name)] = StreamDefinition.model_validate(body, context=context)
    return result
