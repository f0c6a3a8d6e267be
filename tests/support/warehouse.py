"""Reading destination tables as a data engineer would: plain SQL on DuckDB and PostgreSQL.

`Warehouse.rows(...)` returns a table as dicts, `mirrors(rows, records)` tells whether a
table holds exactly the served records (same keys once each, same values), and
`Warehouse.delivered(...)` lists the versions `_ds_deliveries` records, in the order they
were delivered. `publish` and `settled` drive a stream through the real web process.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import duckdb
import psycopg2

from tests.support.upstream import Upstream
from tests.support.waiting import wait_for

DATASET = "data_streams"
# Columns the delivery adds to every row, beside the record's own fields.
ADDED = ("_ds_version", "_ds_published_at", "_ds_deleted", "_dlt_load_id", "_dlt_id")


# Longest a read waits for a delivery holding the DuckDB file's write lock, in seconds.
LOCK_WAIT_SECONDS = 30


class Warehouse:
    """One destination's database: a DuckDB file or a PostgreSQL URL."""

    def __init__(self, *, duckdb_file: Path | None = None, postgres_url: str | None = None
                 ) -> None:
        self.duckdb_file = duckdb_file
        self.postgres_url = postgres_url

    def query(self, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run one query; return (column names, rows). Raises while the table is absent."""
        if self.duckdb_file is not None:
            connection = self._open_read_only()
            try:
                cursor = connection.execute(sql)
                return [c[0] for c in cursor.description or []], cursor.fetchall()
            finally:
                connection.close()
        with psycopg2.connect(self.postgres_url, connect_timeout=3) as connection, \
                connection.cursor() as cursor:
            cursor.execute(sql)
            return [c[0] for c in cursor.description or []], cursor.fetchall()

    def _open_read_only(self) -> Any:
        """Open the DuckDB file for reading, waiting (bounded) while a delivery writes it:
        DuckDB lets one process write a file, and a reader cannot open it meanwhile."""
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        while True:
            try:
                return duckdb.connect(str(self.duckdb_file), read_only=True)
            except duckdb.IOException as exc:
                if "lock" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def execute(self, sql: str) -> None:
        """Run one statement that changes the database, and commit it."""
        if self.duckdb_file is not None:
            connection = duckdb.connect(str(self.duckdb_file))
            try:
                connection.execute(sql)
            finally:
                connection.close()
            return
        with psycopg2.connect(self.postgres_url, connect_timeout=3) as connection, \
                connection.cursor() as cursor:
            cursor.execute(sql)

    def rows(self, table: str) -> list[dict[str, Any]]:
        """Return every row of DATASET.table."""
        names, found = self.query(f"SELECT * FROM {DATASET}.{table}")
        return [dict(zip(names, row, strict=True)) for row in found]

    def delivered(self, stream: str) -> list[tuple[int, str]]:
        """Return (version, mode) of each delivery of `stream` in `_ds_deliveries`."""
        _, found = self.query(f"SELECT version, mode FROM {DATASET}._ds_deliveries "
                              f"WHERE stream = '{stream}' ORDER BY delivered_at, version")
        return [(int(version), str(mode)) for version, mode in found]

    def try_rows(self, table: str) -> list[dict[str, Any]] | None:
        """Return the rows, or None while the table cannot be read (absent, file busy)."""
        try:
            return self.rows(table)
        except (duckdb.Error, psycopg2.Error):
            return None


def mirrors(rows: list[dict[str, Any]] | None, records: list[dict[str, Any]],
            key: str = "id") -> bool:
    """Tell whether `rows` hold exactly `records`: each key once, every field equal."""
    if rows is None or len(rows) != len(records):
        return False
    by_key = {row[key]: row for row in rows}
    if len(by_key) != len(rows):
        return False
    for record in records:
        row = by_key.get(record[key])
        if row is None:
            return False
        fields = {name: value for name, value in row.items() if name not in ADDED}
        if any(fields.get(name) != value for name, value in record.items()):
            return False
        if any(value is not None for name, value in fields.items() if name not in record):
            return False
    return True


def records(ids: range | list[int], label: str = "a", **extra: Any) -> list[dict[str, Any]]:
    """Return flat records with keys `ids`."""
    return [{"id": i, "label": label, "n": i * 3, **extra} for i in ids]


def publish(api: Any, upstream: Upstream, name: str, rows: list[dict[str, Any]]) -> int:
    """Serve `rows` and have the stream publish them as a new version; return it."""
    before = api.current_version(name) or 0
    upstream.feed(name, rows, page_size=max(10, len(rows) // 20))
    api.start(name)
    version = wait_for(lambda: (v := api.current_version(name) or 0) > before and v,
                       timeout=60, what="a new version")
    api.stop(name)
    return int(version)


def settled(api: Any, name: str, version: int, timeout: float = 60.0
            ) -> list[dict[str, Any]]:
    """Wait until every destination holds `version` and no delivery is running."""
    return wait_for(lambda: (lines := api.status(name)["destinations"]) and all(
        line["delivered_version"] == version and not line["delivering"] for line in lines)
        and lines, timeout=timeout, what=f"version {version} delivered everywhere")


def table_of(api: Any, name: str) -> str:
    """Return the table a stream is delivered to, as GET /streams/<name> names it."""
    return str(api.status(name)["destinations"][0]["table"])
