"""GET /data: score ranges and order on order_by, cursors that keep them, NDJSON/CSV export."""

from __future__ import annotations

import csv
import io
from typing import Any

import orjson
import pytest
from flask.testing import FlaskClient

from app.extensions import Store
from config.streams import StreamDefinition
from tests.support.seed import Seeder


def define(store: Store, name: str, order_by: str | None = None) -> None:
    store.definitions.put(name, StreamDefinition.model_validate(
        {"source": {"url": "http://127.0.0.1:1/x"}, "order_by": order_by}))


def read_all(client: FlaskClient, name: str, **params: Any) -> list[Any]:
    records: list[Any] = []
    for _ in range(100):
        response = client.get(f"/streams/{name}/data", query_string=params)
        assert response.status_code == 200, response.json
        records += response.json["records"]
        if response.json["next_cursor"] is None:
            return records
        params = {"cursor": response.json["next_cursor"], "limit": params.get("limit")}
    raise AssertionError("too many pages")


@pytest.fixture
def timed(store: Store, seed: Seeder) -> Store:
    define(store, "t", order_by="at")
    records = [{"id": i, "at": f"2024-01-{i:02d}T00:00:00+00:00"} for i in range(1, 29)]
    seed.publish("t", records, order_by="at")
    return store


def test_min_max_select_a_time_range_across_pages(timed: Store, client: FlaskClient) -> None:
    records = read_all(client, "t", min="2024-01-05T00:00:00+00:00",
                       max="2024-01-10T00:00:00+00:00", limit=2)

    assert [r["id"] for r in records] == [5, 6, 7, 8, 9, 10]


def test_desc_order_with_a_range_keeps_the_range_in_the_cursor(timed: Store,
                                                               client: FlaskClient) -> None:
    records = read_all(client, "t", min="2024-01-20T00:00:00+00:00", order="desc", limit=3)

    assert [r["id"] for r in records] == list(range(28, 19, -1))


def test_numeric_range(store: Store, seed: Seeder, client: FlaskClient) -> None:
    define(store, "n", order_by="price")
    seed.publish("n", [{"id": i, "price": i * 1.5} for i in range(10)], order_by="price")

    records = read_all(client, "n", min="3", max="9", order="asc")

    assert [r["price"] for r in records] == [3.0, 4.5, 6.0, 7.5, 9.0]


def test_range_needs_order_by_and_valid_bounds(store: Store, seed: Seeder, timed: Store,
                                               client: FlaskClient) -> None:
    define(store, "plain")
    seed.publish("plain", [{"id": 1}, {"id": 2}])

    assert client.get("/streams/plain/data?min=1").status_code == 400
    assert client.get("/streams/t/data?max=tomorrow").status_code == 400
    assert client.get("/streams/t/data?min=nan").status_code == 400
    assert client.get("/streams/t/data?order=sideways").status_code == 400
    assert [r["id"] for r in read_all(client, "plain", order="desc")] == [2, 1]


def test_ndjson_export_streams_the_version_with_its_header(timed: Store,
                                                           client: FlaskClient) -> None:
    response = client.get("/streams/t/data?format=ndjson&max=2024-01-03T00:00:00%2B00:00")

    assert response.status_code == 200
    assert response.mimetype == "application/x-ndjson"
    assert response.headers["X-Stream-Version"] == "1"
    assert response.headers["X-Record-Count"] == "3"
    lines = response.get_data(as_text=True).splitlines()
    assert [orjson.loads(line)["id"] for line in lines] == [1, 2, 3]


def test_accept_header_selects_ndjson(timed: Store, client: FlaskClient) -> None:
    response = client.get("/streams/t/data", headers={"Accept": "application/x-ndjson"})

    assert response.mimetype == "application/x-ndjson"
    assert len(response.get_data(as_text=True).splitlines()) == 28


def test_csv_export_flattens_nested_fields(store: Store, seed: Seeder,
                                          client: FlaskClient) -> None:
    define(store, "c")
    seed.publish("c", [{"id": 1, "user": {"name": "a", "tags": ["x"]}},
                       {"id": 2, "user": {"name": "b,c"}, "extra": None, "ok": True}])

    response = client.get("/streams/c/data?format=csv")

    assert response.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0] == ["id", "user.name", "user.tags", "extra", "ok"]
    assert rows[1:] == [["1", "a", '["x"]', "", ""], ["2", "b,c", "", "", "true"]]


def test_export_errors_are_json(store: Store, client: FlaskClient) -> None:
    define(store, "e")

    response = client.get("/streams/e/data?format=csv")

    assert response.status_code == 404
    assert response.json["error"]["code"] == "no_complete_batch"
