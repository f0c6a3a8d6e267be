"""Paged lists on fakeredis: GET /streams, GET /streams/<name>/batches, /ui/overview."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from app.extensions import Store
from app.store.keys import legacy_names_key
from config.streams import StreamDefinition
from tests.support.seed import Seeder


def define(store: Store, *names: str) -> None:
    definition = StreamDefinition.model_validate({"source": {"url": "http://127.0.0.1:1/x"}})
    for name in names:
        store.definitions.put(name, definition)


def walk(client: FlaskClient, path: str, key: str, **query: Any) -> list[list[Any]]:
    """Follow next_cursor from `path` to the end; return each page's items."""
    pages: list[list[Any]] = []
    params: dict[str, Any] = dict(query)
    for _ in range(100):
        response = client.get(path, query_string=params)
        assert response.status_code == 200, response.json
        body = response.json
        pages.append(body[key])
        if body["next_cursor"] is None:
            assert "Link" not in response.headers
            return pages
        assert body["next_cursor"] in response.headers["Link"]
        params = {**query, "cursor": body["next_cursor"]}
    raise AssertionError("the list never ended")


def test_streams_page_by_name_with_cursors(client: FlaskClient, store: Store) -> None:
    names = [f"s-{i:03d}" for i in range(23)]
    define(store, *reversed(names))

    pages = walk(client, "/streams", "streams", limit=5)

    assert [len(page) for page in pages] == [5, 5, 5, 5, 3]
    assert [line["stream"] for page in pages for line in page] == names
    assert set(pages[0][0]) >= {"state", "interval_seconds", "next_run_at", "current_version"}


def test_streams_filter_by_state(client: FlaskClient, store: Store) -> None:
    define(store, *(f"s-{i:02d}" for i in range(12)))
    for i in (1, 5, 6, 11):
        client.post(f"/streams/s-{i:02d}/start", json={"run_now": False})

    running = walk(client, "/streams", "streams", limit=3, state="running")
    stopped = walk(client, "/streams", "streams", limit=3, state="stopped")

    assert [line["stream"] for page in running for line in page] == [
        "s-01", "s-05", "s-06", "s-11"]
    assert all(line["state"] == "running" and line["interval_seconds"] == 300
               for page in running for line in page)
    assert len([line for page in stopped for line in page]) == 8


def test_a_filtered_page_examines_a_bounded_number_of_streams(app: Flask, client: FlaskClient,
                                                              store: Store) -> None:
    app.config["LIST_SCAN_LIMIT"] = 4
    define(store, *(f"s-{i:02d}" for i in range(10)))
    client.post("/streams/s-09/start", json={"run_now": False})

    pages = walk(client, "/streams", "streams", limit=2, state="running")

    assert pages[:2] == [[], []] and [line["stream"] for line in pages[2]] == ["s-09"]


def test_batches_page_newest_first_and_filter_by_status(client: FlaskClient, store: Store,
                                                         seed: Seeder) -> None:
    define(store, "s")
    for round_ in range(7):
        if round_ % 3 == 2:
            seed.batch("s").fail()
        else:
            seed.publish("s", [{"id": round_}])

    pages = walk(client, "/streams/s/batches", "batches", limit=3)
    failed = walk(client, "/streams/s/batches", "batches", limit=1, status="failed")

    assert [[b["version"] for b in page] for page in pages] == [[7, 6, 5], [4, 3, 2], [1]]
    assert [b["version"] for page in failed for b in page] == [6, 3]


@pytest.mark.parametrize("path", ["/streams", "/streams/s/batches", "/ui/overview"])
@pytest.mark.parametrize("query", ["cursor=nonsense", "cursor=eyJ2IjoxLCJvIjo1MH0",
                                   "limit=0", "limit=1001", "state=paused&status=lost"])
def test_bad_paging_is_a_400(client: FlaskClient, store: Store, path: str, query: str) -> None:
    define(store, "s")
    if "state=" in query and path.endswith("batches"):
        query = "status=lost"
    response = client.get(f"{path}?{query}")

    assert response.status_code == 400, (path, query, response.json)


def test_overview_pages_the_same_way(client: FlaskClient, store: Store) -> None:
    define(store, *(f"s-{i:02d}" for i in range(7)))

    pages = walk(client, "/ui/overview", "streams", limit=4)
    one = client.get("/ui/overview/s-03").json

    assert [[line["stream"] for line in page] for page in pages] == [
        ["s-00", "s-01", "s-02", "s-03"], ["s-04", "s-05", "s-06"]]
    assert client.get("/ui/overview?limit=4").json["total"] == 7
    assert [line["stream"] for line in one["streams"]] == ["s-03"]
    assert client.get("/ui/overview/nope").status_code == 404


def test_names_of_the_older_set_move_into_the_index(runner: FlaskCliRunner, redis: Any,
                                                    client: FlaskClient, store: Store) -> None:
    define(store, "b-new")
    redis.sadd(legacy_names_key("ds"), "a-old", "c-old")

    result = runner.invoke(args=["load-streams"])

    assert "moved 2 stream names" in result.output
    assert store.definitions.names() == ["a-old", "b-new", "c-old"]
    assert not redis.exists(legacy_names_key("ds"))
