"""Incremental streams on the real processes: a full batch, incremental batches with
upserts and tombstones, a refresh that finds a hard delete; the served version equals the
upstream's data and the upstream saw only the changed window and details."""

from __future__ import annotations

from typing import Any

from tests.integration.conftest import Api
from tests.support.catalog import Catalog, stamp
from tests.support.upstream import Upstream
from tests.support.waiting import wait_for


def define(api: Api, name: str, upstream: Upstream, catalog: Catalog) -> None:
    base = f"{upstream.base_url}/catalogs/{catalog.name}"
    body = {"source": {"url": f"{base}/items", "records_path": "data",
                       "pagination": {"type": "next_url", "next_url_path": "next"},
                       "incremental": {"cursor_path": "updated_at", "param": "updated_since",
                                       "deleted_path": "deleted"},
                       "details": {"url": f"{base}/items/{{id}}", "concurrency": 3}},
            "key": "id"}
    response = api.call("PUT", f"/streams/{name}", json=body)
    assert response.status_code == 201, response.text


def settled(api: Api, name: str, after: int) -> dict[str, Any]:
    """Wait for the first batch newer than `after` to end; return it."""
    def ended() -> dict[str, Any] | None:
        newer = [batch for batch in api.batches(name) if batch["version"] > after]
        done = [batch for batch in newer if batch["status"] != "running"]
        return done[-1] if done else None
    return wait_for(ended, timeout=30, what=f"a batch of {name} after {after}")


def run(api: Api, name: str, path: str = "run") -> dict[str, Any]:
    last = max([batch["version"] for batch in api.batches(name)], default=0)
    response = api.call("POST", f"/streams/{name}/{path}")
    assert response.status_code == 202, response.text
    return settled(api, name, last)


def served(api: Api, name: str) -> list[Any]:
    return sorted(api.read_all(name, limit=4)[1], key=lambda record: record["id"])


def test_incremental_stream_stays_equal_to_the_upstream(api: Api, upstream: Upstream,
                                                        name: str) -> None:
    catalog = upstream.catalog(name, page_size=4)
    for key in range(1, 11):
        catalog.put(key, name=f"item {key}", detail={"price": key})
    define(api, name, upstream, catalog)
    first = run(api, name)
    assert first["status"] == "complete", first
    assert served(api, name) == catalog.expected()

    catalog.requests.clear()
    catalog.put(3, name="item 3 again", detail={"price": 33})
    catalog.put(11, name="item 11", detail={"price": 11})
    catalog.delete(4)
    second = run(api, name)
    assert second["status"] == "complete" and second["base"] == first["version"]
    assert served(api, name) == catalog.expected()
    assert [seen.query for seen in catalog.saw("/items")] == [{"updated_since": stamp(10)}]
    assert sorted(catalog.detail_ids()) == ["11", "3"]

    catalog.requests.clear()
    catalog.put(5, name="item 5 again")
    catalog.delete(6, tombstone=False)
    third = run(api, name)
    assert third["status"] == "complete"
    assert catalog.saw("/items")[0].query == {"updated_since": stamp(13)}
    assert catalog.detail_ids() == ["5"]
    assert 6 in [record["id"] for record in served(api, name)]

    catalog.requests.clear()
    refreshed = run(api, name, "refresh")
    assert refreshed["status"] == "complete" and refreshed["incremental"]["mode"] == "full"
    assert catalog.saw("/items")[0].query == {}
    assert served(api, name) == catalog.expected()

    changes = api.call("GET", f"/streams/{name}/changes",
                       params={"since": first["version"]}).json()
    assert sorted(record["id"] for record in changes["added"]) == [11]
    assert sorted(record["id"] for record in changes["updated"]) == [3, 5]
    assert sorted(changes["removed"]) == [4, 6]


def test_run_is_refused_while_a_batch_is_in_flight(api: Api, upstream: Upstream,
                                                   name: str) -> None:
    catalog = upstream.catalog(name, page_size=2, delay=0.3)
    for key in range(1, 7):
        catalog.put(key, name=f"item {key}")
    define(api, name, upstream, catalog)

    assert api.call("POST", f"/streams/{name}/run").status_code == 202
    wait_for(lambda: api.status(name)["in_progress"], what="the batch in flight")
    refused = api.call("POST", f"/streams/{name}/run")

    assert refused.status_code == 409 and refused.json()["error"]["code"] == "conflict"
    assert settled(api, name, 0)["status"] == "complete"
    assert api.status(name)["state"] == "stopped"
