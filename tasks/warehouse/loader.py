"""Loading one stream into one destination with dlt, and asking it what it holds.

Each (destination, stream) is a dlt pipeline whose working files stay on this machine;
the destination is the record of truth. A load is one dlt load package holding the
stream's table (``merge`` on the stream's key with the ``hard_delete`` hint, or
``replace`` through a staging table) and one row appended to ``_ds_deliveries`` (stream,
table, version, mode, times). dlt counts a package as loaded only once its row in
``_dlt_loads`` is written, after every table of the package, so `delivered_version` joins
on it: a load cut short by a crash is never counted, and repeating it is harmless
(upserts and deletes by key). Both the merge and the replace change the table in one
transaction of their own, so the table is either as it was or as the new version.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from app.exceptions import UpstreamError
from config import defaults
from config.destinations import DestinationDefinition
from tasks.upstream.auth import secret_from_env

# data-streams never lets dlt send its anonymous usage telemetry anywhere.
os.environ["RUNTIME__DLTHUB_TELEMETRY"] = "false"

import dlt
from dlt.common.destination import Destination
from dlt.common.time import ensure_pendulum_datetime
from dlt.destinations.exceptions import DatabaseUndefinedRelation

from tasks.warehouse.rows import DELETED, PUBLISHED_AT, VERSION

DELIVERIES_TABLE = "_ds_deliveries"
# The loader file format per destination type where dlt's default is slow (duckdb would
# get one INSERT per row); other types use dlt's preferred format.
FILE_FORMATS = {"duckdb": "parquet"}
COLUMNS: dict[str, Any] = {VERSION: {"data_type": "bigint"},
                           PUBLISHED_AT: {"data_type": "timestamp"},
                           DELETED: {"data_type": "bool", "hard_delete": True}}


def timestamp(text: str) -> datetime:
    """Return an ISO-8601 time as the UTC time type dlt coerces without work per row."""
    return ensure_pendulum_datetime(text)


class CredentialsMissing(Exception):
    """The environment variable that should hold a destination's credentials is unset."""


def credentials(definition: DestinationDefinition, duckdb_dir: str, secret_prefix: str) -> Any:
    """Return the credentials dlt gets: the duckdb file, or the variable's value.

    The variable must be a secret variable (``SECRET_ENV_PREFIX``), checked again here as
    for an upstream's secrets, whatever let the definition in.
    """
    if definition.credentials_env:
        try:
            value = secret_from_env(os.environ, definition.credentials_env, secret_prefix)
        except UpstreamError as exc:
            raise CredentialsMissing(exc.message) from None
        return json.loads(value) if value.lstrip().startswith("{") else value
    path = Path(duckdb_dir) / str(definition.path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return str(path.resolve())


_warehouses: dict[tuple[str, str, str, str, str], Warehouse] = {}


def warehouse(name: str, definition: DestinationDefinition, *, duckdb_dir: str,
              work_dir: str, secret_prefix: str) -> Warehouse:
    """Return this process's `Warehouse` for a destination as now defined.

    Kept per process, with its pipelines: creating them costs dlt more than a small
    merge does. A changed definition gets a new one.
    """
    key = (name, definition.model_dump_json(), duckdb_dir, work_dir, secret_prefix)
    if key not in _warehouses:
        _warehouses[key] = Warehouse(name, definition, duckdb_dir=duckdb_dir,
                                     work_dir=work_dir, secret_prefix=secret_prefix)
    return _warehouses[key]


class Warehouse:
    """One destination, as dlt pipelines per stream."""

    def __init__(self, name: str, definition: DestinationDefinition, *, duckdb_dir: str,
                 work_dir: str, secret_prefix: str = defaults.SECRET_ENV_PREFIX) -> None:
        self.name = name
        self.definition = definition
        destination = Destination.from_reference(
            definition.type, credentials=credentials(definition, duckdb_dir, secret_prefix),
            replace_strategy="insert-from-staging")
        assert destination is not None
        self.destination = destination
        self.work_dir = work_dir
        self._pipelines: dict[str, dlt.Pipeline] = {}

    def pipeline(self, stream: str) -> dlt.Pipeline:
        """Return the stream's pipeline, with nothing pending from an earlier attempt."""
        pipeline = self._pipelines.get(stream)
        if pipeline is None:
            name = f"ds__{self.name}__{stream}".replace("-", "_")
            pipeline = dlt.pipeline(pipeline_name=name, pipelines_dir=self.work_dir,
                                    destination=self.destination,
                                    dataset_name=self.definition.dataset)
            # What the destination holds is read by `delivered_version`, not dlt's state.
            pipeline.config.restore_from_destination = False
            self._pipelines[stream] = pipeline
        # A package left by a killed attempt may be older than what another attempt loaded.
        if pipeline.has_pending_data:
            pipeline.drop_pending_packages()
        return pipeline

    def delivered_version(self, pipeline: dlt.Pipeline, stream: str, table: str) -> int:
        """Return the version the table holds (0: none, or the table is gone).

        First forgets this table's rows of `_ds_deliveries` whose load never completed (an
        attempt cut short), so the log holds one row per version delivered.
        """
        naming = dlt.Schema(pipeline.pipeline_name).naming
        with pipeline.sql_client() as client:
            log = client.make_qualified_table_name(DELIVERIES_TABLE)
            loads = client.make_qualified_table_name("_dlt_loads")
            data = client.make_qualified_table_name(naming.normalize_table_identifier(table))
            try:
                client.execute_sql(f"SELECT 1 FROM {data} WHERE 1 = 0")
                client.execute_sql(
                    f"DELETE FROM {log} WHERE stream = %s AND table_name = %s AND "
                    f"_dlt_load_id NOT IN (SELECT load_id FROM {loads} WHERE status = 0)",
                    stream, table)
                found = client.execute_sql(
                    f"SELECT max(d.version) FROM {log} AS d JOIN {loads} AS l "
                    "ON l.load_id = d._dlt_load_id WHERE l.status = 0 AND d.stream = %s "
                    "AND d.table_name = %s", stream, table)
            except DatabaseUndefinedRelation:
                return 0
        return int(found[0][0]) if found and found[0][0] is not None else 0

    def load(self, pipeline: dlt.Pipeline, *, stream: str, table: str, key_path: str,
             mode: str, rows: Iterator[list[dict[str, Any]]],
             record: dict[str, Any]) -> None:
        """Load `rows` into `table` (mode merge or replace) and the delivery `record`."""
        naming = dlt.Schema(pipeline.pipeline_name).naming
        key = naming.normalize_path(naming.make_path(*key_path.split(".")))
        columns = COLUMNS if mode == "merge" else {
            **COLUMNS, DELETED: {"data_type": "bool", "hard_delete": False}}
        data = dlt.resource(rows, name=table, primary_key=key, columns=columns,
                            write_disposition="merge" if mode == "merge" else "replace")
        entry = dlt.resource([{**record, "stream": stream, "table_name": table, "mode": mode}],
                             name=DELIVERIES_TABLE, write_disposition="append")
        # Root keys in nested tables from the first load on, so a replace can be followed
        # by merges (dlt deletes a merged record's nested rows by its root key).
        source = dlt.source(name=pipeline.pipeline_name, root_key=True)(lambda: [data, entry])
        pipeline.run(source(),
                     loader_file_format=FILE_FORMATS.get(self.definition.type))  # type: ignore[arg-type]
