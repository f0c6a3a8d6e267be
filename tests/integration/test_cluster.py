"""The store on a Redis Cluster of three masters with a replica each: streams spread over
the masters by their hash tag, every store operation answers, and the probes and start-up
checks see every server. (tests/integration/test_pipeline.py runs the pipeline here too.)
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest
from flask import Flask
from redis.cluster import RedisCluster

from app import create_app
from app.ops import redis_checks
from app.records import PAGE_STRIDE, encode
from app.store.incremental import TOMBSTONE
from app.store.keys import StreamKeys
from config.incremental import fingerprint
from devtools.system import System
from tests.integration.conftest import Api, serve
from tests.support.seed import Seeder
from tests.support.upstream import Upstream
from tests.support.waiting import wait_for


def catalogue(count: int, label: str) -> list[dict[str, object]]:
    return [{"id": i, "label": label} for i in range(1, count + 1)]


@pytest.fixture
def api(cluster_system: System) -> Iterator[Api]:
    yield from serve(cluster_system)


def store_of(system: System) -> RedisCluster:
    store = system.store
    assert isinstance(store, RedisCluster)
    return store


def on_distinct_masters(system: System, prefix: str, count: int) -> list[str]:
    """Return `count` stream names whose keys live on `count` different masters."""
    cluster, names, masters = store_of(system), [], set()
    for i in range(200):
        name = f"{prefix}-{i}"
        master = cluster.get_node_from_key(StreamKeys("ds", name).current).name
        if master not in masters:
            masters.add(master)
            names.append(name)
        if len(names) == count:
            return names
    raise AssertionError(f"no {count} names on distinct masters")


def test_three_streams_on_three_masters_publish_whole_batches(
        api: Api, upstream: Upstream, name: str) -> None:
    names = on_distinct_masters(api.system, name, 3)
    for index, stream in enumerate(names):
        upstream.feed(stream, catalogue(30 + index, stream), page_size=7)
        api.define(stream, upstream.url(stream))
    for stream in names:
        api.start(stream, interval_seconds=600)

    for index, stream in enumerate(names):
        wait_for(partial(api.current_version, stream), what=f"{stream} published")
        assert api.read_all(stream, limit=4)[1] == catalogue(30 + index, stream)
        assert api.batches(stream)[0]["records"] == 30 + index
    cluster = store_of(api.system)
    homes = {cluster.get_node_from_key(StreamKeys("ds", s).current).name for s in names}
    assert len(homes) == 3
    for stream in names:  # every key of a stream is on its master, none elsewhere
        keys = StreamKeys("ds", stream)
        home = cluster.get_node_from_key(keys.current)
        node = cluster.get_redis_connection(home)
        assert node.exists(keys.current, keys.definition, keys.records(1), keys.batch(1)) == 4
    for stream in names:
        api.stop(stream)


def test_readyz_pings_every_server_of_both_roles(api: Api) -> None:
    response = api.call("GET", "/readyz")
    assert response.status_code == 200, response.text
    checks = response.json()["checks"]
    store = checks["store"]["servers"]
    roles = sorted(server["role"] for server in store.values())
    assert roles == ["master"] * 3 + ["replica"] * 3
    assert all(server["ok"] for server in store.values())
    assert [s["role"] for s in checks["redis"]["servers"].values()] == ["single"]


@pytest.fixture
def app_on_cluster(cluster_system: System) -> Iterator[Flask]:
    """An app in this process whose store is the cluster (batches seeded in process)."""
    app = create_app({"TESTING": True, "REDIS_URL": cluster_system.redis_url,
                      "STORE_URL": cluster_system.env["STORE_URL"],
                      "ALLOWED_SOURCE_HOSTS": ["127.0.0.1"]})
    yield app
    store = app.extensions["store"].connection
    for key in store.scan_iter("ds:*", count=1000):
        store.delete(key)


def test_every_read_and_batch_operation_answers_on_the_cluster(
        app_on_cluster: Flask, name: str) -> None:
    client, seed = app_on_cluster.test_client(), Seeder(app_on_cluster)
    body = {"source": {"url": "http://127.0.0.1:9/x", "records_path": "data"}, "key": "id"}
    assert client.put(f"/streams/{name}", json=body).status_code == 201
    first = seed.publish(name, catalogue(40, "a"), page_size=15)
    second = seed.publish(name, [*catalogue(30, "b"), {"id": 99, "label": "new"}])
    empty = seed.send(name, [])  # the empty-batch gate quarantines it

    answers: dict[str, Any] = {
        "data": client.get(f"/streams/{name}/data?limit=10"),
        "old version": client.get(f"/streams/{name}/data?version={first}"),
        "export": client.get(f"/streams/{name}/data?format=ndjson"),
        "changes": client.get(f"/streams/{name}/changes?since={first}"),
        "schema": client.get(f"/streams/{name}/schema"),
        "batches": client.get(f"/streams/{name}/batches"),
        "batch": client.get(f"/streams/{name}/batches/{second}"),
        "describe": client.get(f"/streams/{name}"),
        "list": client.get("/streams"),
        "overview": client.get("/ui/overview"),
        "metrics": client.get("/metrics"),
        "discard": client.post(f"/streams/{name}/batches/{empty.version}/discard"),
    }
    failed = {what: (r.status_code, r.get_data(as_text=True)[:200])
              for what, r in answers.items() if r.status_code != 200}
    assert not failed
    assert answers["data"].get_json()["version"] == second
    assert len(answers["export"].get_data(as_text=True).splitlines()) == 31
    changes = answers["changes"].get_json()
    assert (len(changes["added"]), len(changes["updated"]), len(changes["removed"])) == \
        (1, 30, 10)
    assert client.delete(f"/streams/{name}").status_code == 204
    assert client.get("/streams").get_json()["streams"] == []


def test_an_incremental_batch_merges_on_the_cluster(app_on_cluster: Flask, name: str
                                                    ) -> None:
    client, seed = app_on_cluster.test_client(), Seeder(app_on_cluster)
    body = {"source": {"url": "http://127.0.0.1:9/x", "records_path": "data",
                       "incremental": {"cursor_path": "id", "param": "since"}}, "key": "id"}
    assert client.put(f"/streams/{name}", json=body).status_code == 201
    definition = seed.store.definitions.get(name)
    assert definition is not None
    state = {"mode": "full", "cursor": 40, "fingerprint": fingerprint(definition)}
    first = seed.publish(name, catalogue(40, "a"), page_size=15, info={"incremental": state})
    batch = seed.batch(name)
    batch.outbox.page(1, [(float(PAGE_STRIDE), encode({"id": 1, "label": "b"})),
                          (float(PAGE_STRIDE + 1), TOMBSTONE + "2")])
    batch.sizes[1] = 2
    batch.complete({"base": str(first), "incremental": {**state, "mode": "incremental"}})

    assert seed.status(name, batch.version) == "complete"
    records = client.get(f"/streams/{name}/data?limit=100").get_json()["records"]
    assert records == [{"id": 1, "label": "b"}, *catalogue(40, "a")[2:]]
    changes = client.get(f"/streams/{name}/changes?since={first}").get_json()
    assert (changes["updated"], changes["removed"]) == ([{"id": 1, "label": "b"}], [2])
    assert seed.store.record_index.version(name) == str(batch.version)


def test_start_up_checks_see_every_server(cluster_system: System,
                                          caplog: pytest.LogCaptureFixture) -> None:
    cluster = store_of(cluster_system)
    replica = cluster.get_replicas()[0]
    node = cluster.get_redis_connection(replica)
    node.config_set("maxmemory-policy", "allkeys-lru")
    try:
        app = create_app({"TESTING": True, "REDIS_URL": cluster_system.redis_url,
                          "STORE_URL": cluster_system.env["STORE_URL"]})
        with caplog.at_level(logging.WARNING, logger="app.ops.redis_checks"):
            assert redis_checks.check_all(app, "web") == []
    finally:
        node.config_set("maxmemory-policy", "noeviction")
    [warning] = [r.getMessage() for r in caplog.records]
    assert f"store replica {replica.name}" in warning and "allkeys-lru" in warning


def test_a_cluster_node_behind_a_plain_url_is_an_error(cluster_system: System) -> None:
    node = store_of(cluster_system).get_primaries()[0]
    plain = f"redis://{node.host}:{node.port}/0"
    as_store = create_app({"TESTING": True, "REDIS_URL": cluster_system.redis_url,
                           "STORE_URL": plain})
    [error] = redis_checks.check_all(as_store, "web")
    assert "runs in cluster mode" in error and "redis+cluster://" in error
    result = as_store.test_cli_runner().invoke(args=["load-streams"])
    assert result.exit_code != 0 and "runs in cluster mode" in result.output
    as_broker = create_app({"TESTING": True, "REDIS_URL": plain,
                            "STORE_URL": cluster_system.env["STORE_URL"]})
    assert any("broker cannot use a cluster" in e
               for e in redis_checks.check_all(as_broker, "web"))
