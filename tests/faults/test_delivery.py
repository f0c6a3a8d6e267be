"""Deliveries under faults: the delivery worker killed mid-load, PostgreSQL stopped a while.

Own redis-server, processes (deliver included) and PostgreSQL. Backoff, sweep and lock
timeouts are shrunk through the environment; each test also checks that the defaults keep
the same relation (a killed or failed delivery is picked up again within a minute or five).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from config import defaults
from devtools.postgres_server import PostgresServer
from tests.faults.conftest import launch
from tests.integration.conftest import Api
from tests.support.upstream import Upstream
from tests.support.waiting import wait_for
from tests.support.warehouse import Warehouse, mirrors, publish, records, settled, table_of

pytestmark = pytest.mark.faults

SECRET = "DS_SECRET_FAULT_PG_URL"
# Seconds: a sweep every second, a lock that outlives its killed holder by 3 s, short backoff.
ENV = {"DELIVERY_SWEEP_SECONDS": "1", "DELIVERY_LOCK_SECONDS": "3",
       "DELIVERY_RETRY_BASE_SECONDS": "1", "DELIVERY_RETRY_MAX_SECONDS": "2",
       "DELIVER_CONCURRENCY": "2"}


class World:
    """The processes, PostgreSQL and the two warehouses of this module."""

    def __init__(self, root: Path) -> None:
        self.postgres = PostgresServer().start()
        self.env = {**ENV, "DUCKDB_DIR": str(root / "duckdb"),
                    "DELIVERY_WORK_DIR": str(root / "dlt"), SECRET: self.postgres.url}
        self.server, self.system = launch(root, "delivery", ("web", "ingest", "worker",
                                                             "beat", "deliver"), **self.env)
        self.lake = Warehouse(duckdb_file=root / "duckdb" / "lake.duckdb")
        self.pg = Warehouse(postgres_url=self.postgres.url)

    def restart_deliver(self) -> None:
        self.system.start("deliver", **self.env)
        self.system.wait_ready(("deliver",))

    def close(self) -> None:
        self.system.stop_all()
        self.server.stop()
        self.postgres.close()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    running = World(tmp_path_factory.mktemp("delivery"))
    yield running
    running.close()


@pytest.fixture
def api(world: World) -> Api:
    client = Api(world.system)
    for name, body in (("lake", {"type": "duckdb", "path": "lake.duckdb"}),
                       ("pg", {"type": "postgres", "credentials_env": SECRET})):
        assert client.call("PUT", f"/destinations/{name}", json=body).status_code in (200, 201)
    return client


def line(api: Api, name: str, destination: str) -> dict[str, Any]:
    return next(x for x in api.status(name)["destinations"] if x["destination"] == destination)


def waiting_on_a_lock(url: str) -> bool:
    with psycopg2.connect(url) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
        return bool(cursor.fetchone()[0])  # type: ignore[index]


def test_worker_killed_mid_merge_leaves_the_table_as_it_was(world: World, api: Api,
                                                            upstream: Upstream,
                                                            name: str) -> None:
    api.define(name, upstream.url(name), deliver_to=["pg"])
    table = table_of(api, name)
    settled(api, name, publish(api, upstream, name, records(range(1, 41))))
    first = api.read_all(name)[1]
    blocker = psycopg2.connect(world.postgres.url)
    with blocker.cursor() as cursor:  # reads pass, the merge's DELETE waits
        cursor.execute(f"LOCK TABLE data_streams.{table} IN EXCLUSIVE MODE")

    second = publish(api, upstream, name, records(range(1, 21), "b") + records(range(30, 60)))
    wait_for(lambda: waiting_on_a_lock(world.postgres.url), what="the merge inside its load")
    world.system.procs["deliver"].kill()
    blocker.rollback()
    blocker.close()

    wait_for(lambda: not waiting_on_a_lock(world.postgres.url), what="the orphan gone")
    served = api.read_all(name)[1]
    found = world.pg.rows(table)
    assert mirrors(found, first) or mirrors(found, served)  # never in between
    restarted = time.monotonic()
    world.restart_deliver()
    settled(api, name, second)
    assert time.monotonic() - restarted < 30
    assert mirrors(world.pg.rows(table), served)
    assert world.pg.delivered(name) == [(1, "replace"), (2, "merge")]
    # At the defaults a killed delivery's lock frees within 30 s, the sweep comes every 10 s.
    assert defaults.DELIVERY_LOCK_SECONDS + defaults.DELIVERY_SWEEP_SECONDS <= 60


def test_worker_killed_during_a_duckdb_load(world: World, api: Api, upstream: Upstream,
                                            name: str) -> None:
    api.define(name, upstream.url(name), deliver_to=["lake"])
    table = table_of(api, name)
    settled(api, name, publish(api, upstream, name, records(range(1, 2001))))
    first = api.read_all(name)[1]

    second = publish(api, upstream, name, records(range(1, 20001), "b"))
    wait_for(lambda: line(api, name, "lake")["delivering"], interval=0.02,
             what="the delivery running")
    world.system.procs["deliver"].kill()

    found = world.lake.rows(table)
    served = api.read_all(name)[1]
    assert mirrors(found, first) or mirrors(found, served)
    world.restart_deliver()
    settled(api, name, second)
    assert mirrors(world.lake.rows(table), served)
    assert [v for v, _ in world.lake.delivered(name)] == [1, 2]


def test_postgres_down_blocks_neither_publishing_nor_duckdb(world: World, api: Api,
                                                            upstream: Upstream,
                                                            name: str) -> None:
    api.define(name, upstream.url(name), deliver_to=["lake", "pg"])
    table = table_of(api, name)
    settled(api, name, publish(api, upstream, name, records(range(1, 31))))

    world.postgres.stop()
    try:
        publish(api, upstream, name, records(range(1, 31), "b"))
        third = publish(api, upstream, name, records(range(10, 40), "c"))
        wait_for(lambda: line(api, name, "lake")["delivered_version"] == third,
                 what="duckdb delivered while postgres is down")
        down = wait_for(lambda: (x := line(api, name, "pg"))["last_error"] and x,
                        what="the failure shown")
        assert down["delivered_version"] == 1 and down["lag_versions"] == 2
        assert down["lag_seconds"] > 0 and down["last_error"]["failures_in_a_row"] >= 1
        assert world.postgres.password not in api.call("GET", f"/streams/{name}").text
        metrics = api.call("GET", "/metrics").text
        assert f'ds_delivery_lag_versions{{destination="pg",stream="{name}"}} 2.0' in metrics
    finally:
        world.postgres.start()

    settled(api, name, third)
    assert mirrors(world.pg.rows(table), api.read_all(name)[1])
    assert world.pg.delivered(name) == [(1, "replace"), (2, "merge"), (3, "merge")]
    assert line(api, name, "pg")["last_error"]["failures_in_a_row"] == 0
    # At the defaults the backoff stops growing at 5 minutes: a destination that is back is
    # caught up within DELIVERY_RETRY_MAX_SECONDS + DELIVERY_SWEEP_SECONDS.
    assert defaults.DELIVERY_RETRY_MAX_SECONDS + defaults.DELIVERY_SWEEP_SECONDS <= 310
