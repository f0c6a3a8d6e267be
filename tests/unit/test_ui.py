"""The status page blueprint: the data-free shell and the overview it polls."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import fakeredis
import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.api import ui
from app.extensions import Store
from app.records import iso
from app.store.keys import StreamKeys
from config.streams import StreamDefinition
from tests.support.seed import Seeder


def define(store: Store, name: str, **fields: object) -> None:
    store.definitions.put(name, StreamDefinition.model_validate(
        {"source": {"url": "http://127.0.0.1:1/x"}, **fields}))


def age(redis: fakeredis.FakeRedis, name: str, version: int, seconds: int) -> None:
    """Pretend a batch was published `seconds` ago."""
    moment = iso(datetime.now(UTC) - timedelta(seconds=seconds))
    redis.hset(StreamKeys("ds", name).batch(version), "published_at", moment)


def test_page_shell_is_html_without_data(client: FlaskClient, store: Store) -> None:
    define(store, "orders", description="secret-free")

    response = client.get("/")

    assert response.status_code == 200
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert '<script src="/static/ui/app.js">' in page and "/static/ui/app.css" in page
    assert "orders" not in page


@pytest.mark.parametrize("asset", ["app.js", "app.css"])
def test_assets_are_served(client: FlaskClient, asset: str) -> None:
    assert client.get(f"/static/ui/{asset}").status_code == 200


def test_stream_page_redirects_to_its_view(client: FlaskClient) -> None:
    response = client.get("/ui/streams/orders")

    assert response.status_code == 302
    assert response.headers["Location"] == "/#/streams/orders"
    assert client.get("/ui/streams/Bad..Name").status_code == 404


def test_overview_without_streams(client: FlaskClient) -> None:
    body = client.get("/ui/overview").get_json()

    assert body["streams"] == []
    assert body["flower_url"] == "http://127.0.0.1:5555"
    assert body["stale_intervals"] == 2
    assert body["now"].endswith("Z")


def test_overview_of_a_stream_never_fetched(client: FlaskClient, store: Store) -> None:
    define(store, "orders", interval_seconds=60, description="Orders of the shop")

    [line] = client.get("/ui/overview").get_json()["streams"]

    assert line["stream"] == "orders" and line["state"] == "stopped"
    assert line["interval_seconds"] == 60, "a stopped stream shows its defined interval"
    assert line["current_version"] is None and line["published_at"] is None
    assert line["stale"] is False and line["last_batch"] is None
    assert line["description"] == "Orders of the shop"


def test_overview_shows_freshness_and_last_failure(client: FlaskClient, store: Store, seed: Seeder,
                                                    redis: fakeredis.FakeRedis) -> None:
    define(store, "orders", interval_seconds=60)
    version = seed.publish("orders", [{"id": i} for i in range(3)])
    failed = seed.batch("orders")
    failed.fail("http_status", "upstream answered 503")

    [line] = client.get("/ui/overview").get_json()["streams"]

    assert line["current_version"] == version
    assert 0 <= line["age_seconds"] < 60 and line["stale"] is False
    assert line["last_batch"]["version"] == failed.version
    assert line["last_batch"]["status"] == "failed"
    assert line["last_batch"]["error"]["kind"] == "http_status"
    assert "token" not in line["last_batch"]


def test_version_older_than_two_intervals_is_stale(client: FlaskClient, store: Store, seed: Seeder,
                                                   redis: fakeredis.FakeRedis) -> None:
    define(store, "fresh", interval_seconds=60)
    define(store, "old", interval_seconds=60)
    age(redis, "fresh", seed.publish("fresh", [{"id": 1}]), 119)
    age(redis, "old", seed.publish("old", [{"id": 1}]), 121)

    lines = {line["stream"]: line for line in client.get("/ui/overview").get_json()["streams"]}

    assert lines["fresh"]["stale"] is False
    assert lines["old"]["stale"] is True and lines["old"]["age_seconds"] >= 121


def test_overview_shows_the_batch_in_progress(client: FlaskClient, store: Store,
                                              seed: Seeder) -> None:
    define(store, "orders")
    batch = seed.batch("orders")
    batch.page([{"id": 1}, {"id": 2}])

    [line] = client.get("/ui/overview").get_json()["streams"]

    progress = line["in_progress"]
    assert progress["version"] == batch.version
    assert (progress["pages_received"], progress["records_received"]) == (1, 2)


@pytest.mark.parametrize(("batch", "expected"), [
    (None, None),
    ({"finished_at": "2024-05-01T10:00:00.000Z"}, datetime(2024, 5, 1, 10, tzinfo=UTC)),
    ({"published_at": "2024-05-01T11:00:00.000Z", "finished_at": "2024-05-01T10:00:00Z"},
     datetime(2024, 5, 1, 11, tzinfo=UTC)),
    ({"published_at": "not a time"}, None),
])
def test_published_at(batch: dict[str, str] | None, expected: datetime | None) -> None:
    assert ui.published_at(batch) == expected


@pytest.mark.parametrize(("age_seconds", "interval", "stale"), [
    (None, 60, False), (500, None, False), (120, 60, False), (120.5, 60, True)])
def test_is_stale(age_seconds: float | None, interval: int | None, stale: bool) -> None:
    assert ui.is_stale(age_seconds, interval) is stale


@pytest.fixture
def guarded(app: Flask) -> Flask:
    """Return the app with both tokens set."""
    app.config.update(READ_TOKEN="read-secret", API_TOKEN="api-secret")
    return app


def test_shell_loads_without_token_but_data_needs_it(guarded: Flask, store: Store) -> None:
    client = guarded.test_client()
    define(store, "orders")
    read = {"Authorization": "Bearer read-secret"}

    assert client.get("/").status_code == 200
    assert client.get("/static/ui/app.js").status_code == 200
    assert client.get("/ui/streams/orders").status_code == 302
    assert client.get("/ui/overview").status_code == 401
    assert client.get("/ui/overview", headers=read).status_code == 200
    assert client.post("/streams/orders/start", headers=read).status_code == 403
