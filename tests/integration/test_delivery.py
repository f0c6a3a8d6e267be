"""Deliveries end to end on real processes: a real upstream, web, ingest, worker, beat and the
deliver worker, into a real DuckDB file and a real PostgreSQL server, read back with SQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devtools.postgres_server import PostgresServer
from devtools.system import System
from tests.integration.conftest import Api
from tests.support.upstream import Upstream
from tests.support.waiting import stays, wait_for
from tests.support.warehouse import Warehouse, mirrors, publish, records, settled, table_of

SECRET = "DS_SECRET_TEST_PG_URL"


@pytest.fixture(scope="module")
def warehouses(system: System, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[dict[str, Warehouse]]:
    """Start PostgreSQL and the deliver worker (DuckDB files in a temp dir)."""
    root = tmp_path_factory.mktemp("warehouse")
    postgres = PostgresServer().start()
    system.start("deliver", DUCKDB_DIR=str(root / "duckdb"),
                 DELIVERY_WORK_DIR=str(root / "dlt"), **{SECRET: postgres.url})
    try:
        system.wait_ready(("deliver",))
        yield {"lake": Warehouse(duckdb_file=root / "duckdb" / "lake.duckdb"),
               "pg": Warehouse(postgres_url=postgres.url)}
    finally:
        system.procs.pop("deliver").stop()
        postgres.close()


@pytest.fixture
def destinations(api: Api, warehouses: dict[str, Warehouse]) -> dict[str, Warehouse]:
    """Define the destinations `lake` (DuckDB) and `pg` (PostgreSQL) for one test."""
    for name, body in (("lake", {"type": "duckdb", "path": "lake.duckdb"}),
                       ("pg", {"type": "postgres", "credentials_env": SECRET})):
        response = api.call("PUT", f"/destinations/{name}", json=body)
        assert response.status_code in (200, 201), response.text
    return warehouses


def define(api: Api, upstream: Upstream, name: str) -> None:
    api.define(name, upstream.url(name), deliver_to=["lake", "pg"])


def test_five_versions_arrive_in_order_exactly_as_served(
        api: Api, upstream: Upstream, name: str, destinations: dict[str, Warehouse]) -> None:
    define(api, upstream, name)
    table = table_of(api, name)
    versions = [records(range(1, 31)),
                records(range(1, 31), "b")[:10] + records(range(11, 36)),
                records(range(5, 36)),
                records(range(5, 20), "c") + records(range(21, 41)),
                records(range(1, 3)) + records(range(5, 20), "c") + records(range(30, 45), "d")]

    for rows in versions:
        version = publish(api, upstream, name, rows)
        settled(api, name, version)
        served = api.read_all(name)[1]
        for warehouse in destinations.values():
            assert mirrors(warehouse.rows(table), served)

    expected = [(1, "replace"), (2, "merge"), (3, "merge"), (4, "merge"), (5, "merge")]
    for warehouse in destinations.values():
        assert warehouse.delivered(name) == expected
        assert {row["_ds_version"] for row in warehouse.rows(table)} <= {1, 2, 3, 4, 5}


def test_a_new_upstream_field_becomes_a_column(api: Api, upstream: Upstream, name: str,
                                               destinations: dict[str, Warehouse]) -> None:
    define(api, upstream, name)
    table = table_of(api, name)
    settled(api, name, publish(api, upstream, name, records(range(1, 21))))

    rows = records(range(1, 11), "a", color="red") + records(range(11, 21))
    settled(api, name, publish(api, upstream, name, rows))

    served = api.read_all(name)[1]
    for warehouse in destinations.values():
        found = warehouse.rows(table)
        assert mirrors(found, served)
        assert {row["id"] for row in found if row["color"] == "red"} == set(range(1, 11))


def test_the_same_version_twice_changes_nothing(api: Api, upstream: Upstream, name: str,
                                                system: System,
                                                destinations: dict[str, Warehouse]) -> None:
    define(api, upstream, name)
    table = table_of(api, name)
    settled(api, name, publish(api, upstream, name, records(range(1, 21))))
    settled(api, name, publish(api, upstream, name, records(range(5, 25), "b")))
    pg = destinations["pg"]
    # As if the worker died after the merge but before dlt wrote the load's completion:
    pg.execute("DELETE FROM data_streams._dlt_loads WHERE load_id = "
                    "(SELECT max(_dlt_load_id) FROM data_streams._ds_deliveries "
                    f"WHERE stream = '{name}')")
    for key in system.redis.scan_iter(f"ds:{{{name}}}:dst:*"):
        system.redis.delete(key)  # and the store forgot what it delivered

    for _ in range(3):  # duplicated and redelivered messages
        for destination in ("lake", "pg"):
            system.celery.send_task("ds.deliver.stream", args=[name, destination],
                                    queue="deliver")
    settled(api, name, 2)

    served = api.read_all(name)[1]
    stays(lambda: all(mirrors(w.try_rows(table), served) for w in destinations.values()),
          2.0, what="tables equal to the served version")
    for warehouse in destinations.values():
        assert warehouse.delivered(name) == [(1, "replace"), (2, "merge")]


def test_reload_replaces_a_tampered_table(api: Api, upstream: Upstream, name: str,
                                          destinations: dict[str, Warehouse]) -> None:
    define(api, upstream, name)
    table = table_of(api, name)
    version = publish(api, upstream, name, records(range(1, 16)))
    settled(api, name, version)
    pg = destinations["pg"]
    pg.execute(f"DELETE FROM data_streams.{table} WHERE id < 5")

    answer = api.call("POST", f"/streams/{name}/destinations/pg/reload")

    assert answer.status_code == 200 and answer.json()["reload_pending"] is True
    wait_for(lambda: pg.delivered(name) == [(version, "replace")] * 2, timeout=60,
             what="the reload")
    assert mirrors(pg.rows(table), api.read_all(name)[1])
    assert destinations["lake"].delivered(name) == [(version, "replace")]


def test_status_and_metrics_show_each_destination(api: Api, upstream: Upstream, name: str,
                                                  destinations: dict[str, Warehouse]) -> None:
    define(api, upstream, name)
    version = publish(api, upstream, name, records(range(1, 6)))

    lines = settled(api, name, version)

    assert {line["destination"] for line in lines} == {"lake", "pg"}
    for line in lines:
        assert line["lag_versions"] == 0 and line["lag_seconds"] == 0
        assert line["last_delivery"]["rows"] == 5
        assert line["last_delivery"]["mode"] == "replace"
        assert line["last_error"] is None
    metrics = api.call("GET", "/metrics").text
    assert f'ds_delivery_lag_versions{{destination="pg",stream="{name}"}} 0.0' in metrics
    assert f'ds_delivery_lag_seconds{{destination="lake",stream="{name}"}} 0.0' in metrics
    listed = api.call("GET", "/destinations").json()["destinations"]
    assert {d["destination"]: d["streams"] for d in listed} == {"lake": [name], "pg": [name]}
    assert "postgresql://" not in api.call("GET", "/destinations").text


def test_nested_objects_flatten_and_lists_follow_their_records(
        api: Api, upstream: Upstream, name: str, destinations: dict[str, Warehouse]) -> None:
    define(api, upstream, name)
    table = table_of(api, name)
    first = [{"id": i, "meta": {"size": i}, "tags": [f"t{i}", "all"]} for i in range(1, 6)]
    settled(api, name, publish(api, upstream, name, first))

    second = [{"id": i, "meta": {"size": i * 10}, "tags": [f"u{i}"]} for i in (1, 2, 3)]
    settled(api, name, publish(api, upstream, name, second))

    for warehouse in destinations.values():
        assert {row["id"]: row["meta__size"] for row in warehouse.rows(table)} == \
            {1: 10, 2: 20, 3: 30}
        _, tags = warehouse.query(
            f"SELECT p.id, c.value FROM data_streams.{table}__tags AS c LEFT JOIN "
            f"data_streams.{table} AS p ON c._dlt_parent_id = p._dlt_id")
        assert sorted(tags) == [(1, "u1"), (2, "u2"), (3, "u3")]
