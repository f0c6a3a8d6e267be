"""A consumer killed while it merges an incremental batch, at the default settings: the
next delivery of the message finishes the merge, and the version is exact."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import pytest

from app.store.keys import StreamKeys
from devtools.system import System
from tests.faults.conftest import DEFAULT_LIMITS, launch, log_text
from tests.faults.test_settling import pool_children
from tests.integration.conftest import Api
from tests.support.catalog import Catalog
from tests.support.upstream import Upstream
from tests.support.waiting import wait_for

pytestmark = pytest.mark.faults

BIG = 60_000  # records: enough for the copy of the base version to take a moment


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    server, running = launch(tmp_path_factory.mktemp("incremental"), "incremental",
                             **DEFAULT_LIMITS)
    yield running
    running.stop_all()
    server.stop()


@pytest.fixture
def api(system: System) -> Api:
    return Api(system)


def define(api: Api, name: str, upstream: Upstream, catalog: Catalog) -> None:
    body = {"source": {"url": f"{upstream.base_url}/catalogs/{catalog.name}/items",
                       "records_path": "data",
                       "pagination": {"type": "next_url", "next_url_path": "next"},
                       "incremental": {"cursor_path": "updated_at",
                                       "param": "updated_since"}},
            "key": "id"}
    assert api.call("PUT", f"/streams/{name}", json=body).status_code == 201


def test_a_consumer_killed_while_merging_is_replaced_by_the_next_delivery(
        system: System, api: Api, upstream: Upstream, name: str) -> None:
    catalog = upstream.catalog(name, page_size=5000)
    for key in range(1, BIG + 1):
        catalog.put(key, name="same")
    define(api, name, upstream, catalog)
    assert api.call("POST", f"/streams/{name}/run").status_code == 202
    first = wait_for(lambda: api.current_version(name), timeout=120, what="the full batch")
    wait_for(lambda: api.status(name)["in_progress"] is None, what="the first batch to end")
    for key in range(1, BIG + 1, BIG // 10):
        catalog.put(key, name="changed")
    keys = StreamKeys("ds", name)
    victim = first + 1

    def merging() -> bool:  # the copy of the base has begun, the commit has not happened
        status, copied = system.redis.hmget(keys.batch(victim), "status", "merge_at")
        return status == "running" and int(copied or 0) > 0

    assert api.call("POST", f"/streams/{name}/run").status_code == 202
    wait_for(merging, timeout=60, interval=0.002, what="the merge of the incremental batch")
    ingest = system.procs["ingest"].process
    assert ingest is not None
    for child in pool_children(ingest.pid):
        os.kill(child, signal.SIGKILL)
    killed_at = time.monotonic()
    merge_at = system.redis.hget(keys.batch(victim), "merge_at")  # how far the copy got

    fresh = wait_for(lambda: (v := api.current_version(name)) and v > first and v,
                     timeout=90, what="the merge finished by the next delivery")
    finished = time.monotonic() - killed_at
    batch = api.call("GET", f"/streams/{name}/batches/{fresh}").json()["batch"]
    assert fresh == victim and batch["base"] == first
    assert batch["records"] == BIG
    assert batch["changes"] == {"from": first, "added": 0, "updated": 10, "removed": 0}
    assert system.redis.ttl(keys.records(victim)) == -1
    assert system.redis.ttl(keys.changes(victim)) == -1
    served = {record["id"]: record["name"] for record in api.read_all(name, limit=5000)[1]}
    assert served == {item["id"]: item["name"] for item in catalog.expected()}
    assert "signal 9" in log_text(system, "ingest")
    print(f"\nconsumer killed while merging version {victim} (copy at {merge_at} of {BIG}): "
          f"finished by the redelivered message {finished:.1f}s after the kill, 10 updated")
