"""Destinations through the Flask test client, on fakeredis: definitions, deliver_to, reload,
and what GET /streams/<name> and /metrics show before any delivery ran."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from config.destinations import DeliveryTarget, DestinationDefinition
from tests.support.seed import Seeder

STREAM: dict[str, Any] = {
    "source": {"url": "http://127.0.0.1:9/items", "records_path": "data"}, "key": "id"}
PG = {"type": "postgres", "credentials_env": "DS_SECRET_PG_URL", "dataset": "raw"}


@pytest.fixture(autouse=True)
def allow_test_upstream(app: Flask) -> None:
    app.config["ALLOWED_SOURCE_HOSTS"] = ["127.0.0.1:9"]


def test_put_get_list_and_delete_a_destination(client: FlaskClient) -> None:
    created = client.put("/destinations/pg", json=PG)
    replaced = client.put("/destinations/pg", json={**PG, "dataset": "other"})

    assert created.status_code == 201 and created.json["created"] is True
    assert replaced.status_code == 200 and replaced.json["definition"]["dataset"] == "other"
    assert client.get("/destinations/pg").json["definition"]["credentials_env"] == \
        "DS_SECRET_PG_URL"
    assert [d["destination"] for d in client.get("/destinations").json["destinations"]] == \
        ["pg"]
    assert client.delete("/destinations/pg").status_code == 204
    assert client.get("/destinations/pg").status_code == 404


@pytest.mark.parametrize(("body", "field"), [
    ({"type": "postgres"}, "body"),                                  # no credentials_env
    ({"type": "postgres", "credentials_env": "not a name"}, "credentials_env"),
    ({"type": "duckdb"}, "body"),                                    # no path
    ({"type": "duckdb", "path": "../etc/x.duckdb"}, "path"),
    ({"type": "duckdb", "path": "/tmp/x.duckdb"}, "path"),
    ({"type": "postgres", "credentials_env": "REDIS_URL"}, "credentials_env"),
    ({"type": "postgres", "credentials_env": "DS_SECRET_X", "path": "x"}, "body"),
    ({"type": "mysql-ish", "credentials_env": "DS_SECRET_X"}, "type"),
    ({"type": "duckdb", "path": "x", "dataset": "a__b"}, "dataset"),
    ({"type": "duckdb", "path": "x", "password": "hunter2"}, "password")])
def test_invalid_destinations_are_422_naming_the_field(client: FlaskClient,
                                                       body: dict[str, Any],
                                                       field: str) -> None:
    response = client.put("/destinations/bad", json=body)

    assert response.status_code == 422, response.json
    assert response.json["error"]["details"]["errors"][0]["field"] == field


def test_a_stream_may_deliver_only_to_defined_destinations(client: FlaskClient) -> None:
    missing = client.put("/streams/orders", json={**STREAM, "deliver_to": ["pg"]})
    client.put("/destinations/pg", json=PG)
    twice = client.put("/streams/orders", json={**STREAM, "deliver_to": ["pg", "pg"]})
    named = client.put("/streams/orders", json={
        **STREAM, "deliver_to": [{"destination": "pg", "table": "order_lines"}]})

    assert missing.status_code == 422
    assert missing.json["error"]["details"]["errors"][0]["field"] == "deliver_to.0.destination"
    assert twice.status_code == 422
    assert named.status_code == 201
    assert client.delete("/destinations/pg").status_code == 409
    assert client.get("/destinations/pg").json["streams"] == ["orders"]


def test_stream_shows_each_destination_and_its_lag(client: FlaskClient, seed: Seeder) -> None:
    client.put("/destinations/pg", json=PG)
    client.put("/streams/orders", json={**STREAM, "deliver_to": ["pg"]})
    seed.publish("orders", [{"id": 1}])
    seed.send("orders", [])                      # quarantined (empty): not a published version
    seed.publish("orders", [{"id": 1}, {"id": 2}])

    line = client.get("/streams/orders").json["destinations"][0]

    assert line["destination"] == "pg" and line["type"] == "postgres"
    assert line["table"] == "orders" and line["delivered_version"] is None
    assert line["current_version"] == 3 and line["lag_versions"] == 2
    assert line["lag_seconds"] >= 0 and line["last_delivery"] is None
    assert line["last_error"] is None and line["delivering"] is False
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'ds_delivery_lag_versions{destination="pg",stream="orders"} 2.0' in metrics
    assert 'ds_delivery_lag_seconds{destination="pg",stream="orders"}' in metrics


def test_reload_is_asked_for_a_destination_of_the_stream(client: FlaskClient,
                                                         app: Flask) -> None:
    client.put("/destinations/pg", json=PG)
    client.put("/destinations/other", json=PG)
    client.put("/streams/orders", json={**STREAM, "deliver_to": ["pg"]})

    asked = client.post("/streams/orders/destinations/pg/reload")
    elsewhere = client.post("/streams/orders/destinations/other/reload")
    unknown = client.post("/streams/nope/destinations/pg/reload")

    assert asked.status_code == 200 and asked.json["reload_pending"] is True
    assert client.get("/streams/orders").json["destinations"][0]["reload_pending"] is True
    assert elsewhere.status_code == 404 and unknown.status_code == 404


def test_deliver_to_accepts_names_and_objects() -> None:
    target = DeliveryTarget.model_validate("warehouse")

    assert target.destination == "warehouse" and target.table_for("my-stream") == "my_stream"
    assert DeliveryTarget.model_validate({"destination": "w", "table": "t1"}).table_for("x") \
        == "t1"
    assert DeliveryTarget.model_validate("w").table_for("9-lives--") == "_9_lives"
    assert DestinationDefinition(type="duckdb", path="a/b.duckdb").single_writer


def test_openapi_documents_the_destination_routes(client: FlaskClient) -> None:
    paths = client.get("/openapi.json").json["paths"]

    assert {"/destinations", "/destinations/{name}",
            "/streams/{stream}/destinations/{name}/reload"} <= set(paths)
