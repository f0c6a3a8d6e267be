"""Destinations: the warehouses a stream's published versions are delivered to.

A destination is named once (the `destinations:` section of the settings file, or
`PUT /destinations/<name>`) and a stream opts in with ``"deliver_to": ["warehouse"]``
(or ``{"destination": "warehouse", "table": "items"}``). The type is one of dlt's SQL
destinations; `duckdb` and `postgres` are installed and tested, the others need dlt's
extra (``pip install "dlt[snowflake]"``). Secrets are never part of a definition:
`credentials_env` names an environment variable of the delivery worker, read at load
time, with the same rules as a stream's `source.auth`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from config.source_auth import EnvName

DESTINATION_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
# Names dlt's snake_case naming keeps as they are: no "__" (its nesting separator), no
# trailing "_", no leading digit.
TABLE_NAME = r"^_?[a-z][a-z0-9]*(_[a-z0-9]+)*$"

# dlt's SQL destinations: each merges by primary key with hard deletes.
DestinationType = Literal["duckdb", "motherduck", "postgres", "redshift", "snowflake",
                          "bigquery", "mssql", "synapse", "fabric", "databricks",
                          "clickhouse", "athena", "dremio", "sqlalchemy"]
# A destination one process at a time may write (a local file): deliveries to it take
# one lock for the whole destination instead of one per stream.
SINGLE_WRITER_TYPES = frozenset({"duckdb"})


class DestinationDefinition(BaseModel):
    """Where and how deliveries load: a dlt destination, its dataset and credentials."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: DestinationType = Field(description="A dlt destination type, e.g. duckdb, postgres.")
    dataset: str = Field(default="data_streams", pattern=TABLE_NAME, max_length=63,
                         description="Dataset (schema) the tables are created in.")
    credentials_env: EnvName | None = Field(
        default=None, description="Environment variable of the delivery worker holding the "
                                  "credentials: a connection string or a JSON object.")
    path: str | None = Field(
        default=None, max_length=256,
        description="duckdb only: the database file, relative to DUCKDB_DIR.")
    description: str = Field(default="", max_length=1000)

    @field_validator("path")
    @classmethod
    def _relative(cls, path: str | None) -> str | None:
        if path is not None:
            parts = PurePosixPath(path).parts
            if not parts or path.startswith("/") or ".." in parts or "\\" in path:
                raise ValueError("path must be relative to DUCKDB_DIR, without '..'")
        return path

    @model_validator(mode="after")
    def _credentials(self) -> DestinationDefinition:
        if self.type == "duckdb":
            if self.path is None and self.credentials_env is None:
                raise ValueError("a duckdb destination needs a path (or credentials_env)")
        elif self.path is not None:
            raise ValueError("path applies to duckdb only; use credentials_env")
        elif self.credentials_env is None:
            raise ValueError(f"a {self.type} destination needs credentials_env")
        return self

    @property
    def single_writer(self) -> bool:
        return self.type in SINGLE_WRITER_TYPES


class DeliveryTarget(BaseModel):
    """One destination of a stream, and the table its records land in."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    destination: str = Field(pattern=DESTINATION_NAME.pattern)
    table: str | None = Field(default=None, pattern=TABLE_NAME, max_length=63,
                              description="Table name; default: the stream's name.")

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, value: Any) -> Any:
        return {"destination": value} if isinstance(value, str) else value

    def table_for(self, stream: str) -> str:
        """Return the table name: `table`, else the stream's name as dlt names a table."""
        if self.table:
            return self.table
        name = re.sub(r"[-_]+", "_", stream).rstrip("_") or "_"
        return f"_{name}" if name[0].isdigit() else name


def _distinct(targets: list[DeliveryTarget]) -> list[DeliveryTarget]:
    names = [target.destination for target in targets]
    if len(set(names)) != len(names):
        raise ValueError("each destination may appear once in deliver_to")
    return targets


DeliverTo = Annotated[list[DeliveryTarget], AfterValidator(_distinct), Field(
    max_length=16, description="Destinations each published version is delivered to: "
                               "names, or {destination, table} objects.")]


def valid_destination_name(name: str) -> bool:
    """Tell whether `name` may name a destination (it becomes part of Redis keys and URLs)."""
    return bool(DESTINATION_NAME.match(name))


def load_destinations_file(path: str | Path, context: dict[str, Any] | None = None
                           ) -> dict[str, DestinationDefinition]:
    """Read `{"destinations": {name: definition}}` from YAML or JSON; ${VARS} are expanded.

    `context` is the validation context (the secret variable prefix).
    """
    text = os.path.expandvars(Path(path).read_text(encoding="utf-8"))
    raw: Any = yaml.safe_load(text) or {}
    found = raw.get("destinations", {}) if isinstance(raw, dict) else {}
    result: dict[str, DestinationDefinition] = {}
    for name, body in (found or {}).items():
        if not valid_destination_name(str(name)):
            raise ValueError(f"invalid destination name in {path}: {name!r}")
        result[str(name)] = DestinationDefinition.model_validate(body, context=context)
    return result
