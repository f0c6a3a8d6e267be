"""The stream resource through the Flask test client, on fakeredis."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.extensions import Store
from app.store.keys import StreamKeys
from tests.support.seed import Seeder

DEFINITION: dict[str, Any] = {
    "source": {"url": "http://127.0.0.1:9/items", "records_path": "data",
               "pagination": {"type": "next_url", "next_url_path": "next"}},
    "key": "id", "interval_seconds": 300}


@pytest.fixture(autouse=True)
def allow_test_upstream(app: Flask) -> None:
    """Allow-list the (never contacted) upstream these definitions name."""
    app.config["ALLOWED_SOURCE_HOSTS"] = ["127.0.0.1:9", "127.0.0.1:8001"]


def test_put_creates_then_replaces_a_stream(client: FlaskClient) -> None:
    created = client.put("/streams/orders", json=DEFINITION)
    replaced = client.put("/streams/orders", json={**DEFINITION, "interval_seconds": 60})

    assert created.status_code == 201 and created.json["created"] is True
    assert replaced.status_code == 200 and replaced.json["created"] is False
    listed = client.get("/streams").json["streams"]
    assert [row["stream"] for row in listed] == ["orders"]
    assert listed[0]["state"] == "stopped"
    assert client.get("/streams/orders").json["definition"]["interval_seconds"] == 60


def test_invalid_definition_names_the_field(client: FlaskClient) -> None:
    bad = {**DEFINITION, "source": {**DEFINITION["source"], "pagination": {"type": "bogus"}}}

    response = client.put("/streams/orders", json=bad)

    assert response.status_code == 422
    error = response.json["error"]
    assert error["code"] == "validation_failed"
    assert any(e["field"].startswith("source.pagination") for e in error["details"]["errors"])


def test_unknown_fields_and_bad_interval_are_refused(client: FlaskClient) -> None:
    assert client.put("/streams/a", json={**DEFINITION, "surprise": 1}).status_code == 422
    too_fast = client.put("/streams/a", json={**DEFINITION, "interval_seconds": 0})
    assert too_fast.status_code == 422
    assert too_fast.json["error"]["details"]["errors"][0]["field"] == "interval_seconds"


def test_non_json_body_is_415_and_broken_json_is_400(client: FlaskClient) -> None:
    assert client.put("/streams/a", data="x", content_type="text/plain").status_code == 415
    broken = client.put("/streams/a", data="{", content_type="application/json")
    assert broken.status_code == 400 and broken.json["error"]["code"] == "bad_request"


def test_unknown_stream_is_404_everywhere(client: FlaskClient) -> None:
    for method, path in [("GET", "/streams/nope"), ("POST", "/streams/nope/start"),
                         ("POST", "/streams/nope/stop"), ("GET", "/streams/nope/data"),
                         ("GET", "/streams/nope/batches"), ("DELETE", "/streams/nope")]:
        response = client.open(path, method=method)
        assert response.status_code == 404, path
        assert response.json["error"]["code"] == "stream_not_found"


def test_start_registers_one_entry_and_is_idempotent(client: FlaskClient, store: Store) -> None:
    client.put("/streams/orders", json=DEFINITION)

    first = client.post("/streams/orders/start", json={"run_now": False})
    second = client.post("/streams/orders/start", json={"interval_seconds": 30})

    assert first.json["state"] == "running" and first.json["interval_seconds"] == 300
    assert second.json["already_running"] is True and second.json["interval_seconds"] == 30
    assert second.json["queued_task"] is None
    entries = list(store.connection.scan_iter("{redbeat}:stream:*"))
    assert entries == ["{redbeat}:stream:orders"]
    assert client.get("/streams/orders").json["state"] == "running"


def test_stop_removes_the_entry_and_keeps_the_definition(client: FlaskClient,
                                                         store: Store) -> None:
    client.put("/streams/orders", json=DEFINITION)
    client.post("/streams/orders/start", json={"run_now": False})

    stopped = client.post("/streams/orders/stop")
    again = client.post("/streams/orders/stop")

    assert stopped.json["state"] == "stopped" and stopped.json["was_running"] is True
    assert again.status_code == 200 and again.json["was_running"] is False
    assert list(store.connection.scan_iter("{redbeat}:stream:*")) == []
    assert client.get("/streams/orders").status_code == 200


def test_stop_with_cancel_abandons_the_batch_in_flight(client: FlaskClient, store: Store,
                                                       seed: Seeder) -> None:
    client.put("/streams/orders", json=DEFINITION)
    batch = seed.batch("orders")

    stopped = client.post("/streams/orders/stop", json={"cancel": True})

    assert stopped.json["cancelled_version"] == batch.version
    assert store.reader.batch("orders", batch.version)["status"] == "cancelled"
    assert store.locks.holder("orders") is None
    assert not store.locks.extend(batch.lease)


def test_data_before_the_first_batch_is_404_with_a_reason(client: FlaskClient) -> None:
    client.put("/streams/orders", json=DEFINITION)

    response = client.get("/streams/orders/data")

    assert response.status_code == 404
    assert response.json["error"]["code"] == "no_complete_batch"


def test_delete_forgets_the_stream(client: FlaskClient) -> None:
    client.put("/streams/orders", json=DEFINITION)

    assert client.delete("/streams/orders").status_code == 204
    assert client.get("/streams/orders").status_code == 404


def test_delete_removes_every_key_and_a_new_stream_of_the_name_starts_empty(
        client: FlaskClient, store: Store, seed: Seeder) -> None:
    client.put("/streams/orders", json=DEFINITION)
    client.post("/streams/orders/start", json={"run_now": False})
    seed.publish("orders", [{"id": 1}])
    seed.publish("orders", [{"id": 1}, {"id": 2}])
    store.rate_limits.block("orders", 60)
    late = seed.batch("orders")  # in flight when the stream is deleted
    late.page([{"id": 3}])
    keys = StreamKeys("ds", "orders")

    assert client.delete("/streams/orders").status_code == 204

    assert list(store.connection.scan_iter(keys.pattern)) == []
    assert list(store.connection.scan_iter("{redbeat}:stream:*")) == []
    late.page([{"id": 4}], number=2)  # its fetch's last messages arrive late
    late.complete()
    late.fail()
    assert store.connection.exists(keys.batch(late.version), keys.batches, keys.seq,
                                   keys.records(late.version), keys.current) == 0
    client.put("/streams/orders", json=DEFINITION)
    fresh = client.get("/streams/orders").json
    assert (fresh["current_version"], fresh["in_progress"], fresh["rate_limited_until"]) == (
        None, None, None)
    assert client.get("/streams/orders/batches").json["batches"] == []
    first = seed.batch("orders")
    late.outbox.begin()  # of the old batch 3, beyond the new sequence
    assert seed.status("orders", first.version) == "running"
    first.page([{"id": 9}])
    first.complete()
    assert seed.status("orders", first.version) == "complete" and first.version == 1
    seed.batch("orders").fail()
    third = seed.batch("orders")  # version 3 again, of the new stream
    third.page([{"id": 10}])
    assert third.version == late.version == 3

    late.outbox.begin()  # the old batch 3's messages leave the new one alone
    late.page([{"id": 5}], number=2)
    late.fail()
    batch = store.reader.batch("orders", 3)
    assert (batch["status"], batch["records_received"]) == ("running", 1)


def test_load_streams_command_registers_the_demo(runner: Any, client: FlaskClient,
                                                 monkeypatch: Any) -> None:
    monkeypatch.setenv("DEMO_PORT", "8001")

    result = runner.invoke(args=["load-streams", "config/streams.yaml"])

    assert "created stream demo" in result.output
    source = client.get("/streams/demo").json["definition"]["source"]
    assert source["url"] == "http://127.0.0.1:8001/items?page_size=50"


def test_run_queues_a_batch_of_a_stopped_stream_and_refuses_while_one_runs(
        client: FlaskClient, store: Store, seed: Seeder) -> None:
    client.put("/streams/orders", json=DEFINITION)

    queued = client.post("/streams/orders/run")

    assert queued.status_code == 202, queued.json
    assert queued.json["state"] == "stopped" and queued.json["queued_task"]
    assert queued.json["full_refresh"] is False
    running = seed.batch("orders")
    refused = client.post("/streams/orders/run")
    assert refused.status_code == 409 and refused.json["error"]["code"] == "conflict"
    assert refused.json["error"]["details"]["version"] == running.version
    assert client.post("/streams/orders/refresh").status_code == 409
    assert client.post("/streams/missing/run").status_code == 404


def test_refresh_asks_for_a_full_batch(client: FlaskClient, store: Store) -> None:
    client.put("/streams/orders", json=DEFINITION)

    queued = client.post("/streams/orders/refresh")

    assert queued.status_code == 202 and queued.json["full_refresh"] is True
    assert store.full_refresh.take("orders") is True
    assert store.full_refresh.take("orders") is False


def test_a_misspelt_field_is_named_with_the_closest_valid_one(client: FlaskClient) -> None:
    source = {**DEFINITION["source"], "records_pth": "data"}
    source.pop("records_path")

    response = client.put("/streams/a", json={**DEFINITION, "source": source})

    assert response.status_code == 422
    first = response.json["error"]["details"]["errors"][0]
    assert (first["field"], first["suggestion"]) == ("source.records_pth", "records_path")
    assert "did you mean 'records_path'" in response.json["error"]["message"]
    tagged = {**DEFINITION["source"], "pagination": {"type": "cursor", "cursor_path": "c",
                                                     "cursor_parm": "after"}}
    nested = client.put("/streams/a", json={**DEFINITION, "source": tagged})
    assert nested.json["error"]["details"]["errors"][0]["suggestion"] == "cursor_param"


def test_new_source_options_are_checked_at_put(client: FlaskClient) -> None:
    cases = {
        "source.incremental.param_in": {"incremental": {"cursor_path": "u", "param": "p",
                                                        "param_in": "cookie"}},
        "source.incremental": {"incremental": {"cursor_path": "u", "param": "since",
                                               "param_in": "body"}},
        "source.details.url": {"details": {"url": "http://127.0.0.1:9/items/{id"}},
        "source.format": {"format": "csv"},  # next_url pagination reads a JSON body
        "source.incremental.full_refresh_every": {"incremental": {
            "cursor_path": "u", "param": "p", "full_refresh_every": {"batches": 2,
                                                                     "seconds": 60}}},
        "source.incremental.initial_value": {"incremental": {"cursor_path": "u",
                                                             "param": "p",
                                                             "initial_value": "soon"}},
    }
    for field, change in cases.items():
        body = {**DEFINITION, "source": {**DEFINITION["source"], **change}}
        response = client.put("/streams/a", json=body)
        assert response.status_code == 422, (field, response.json)
        fields = [error["field"] for error in response.json["error"]["details"]["errors"]]
        assert field in fields, (field, fields)
    forbidden = {**DEFINITION, "source": {**DEFINITION["source"], "details": {
        "url": "http://10.0.0.1/items/{id}"}}}
    refused = client.put("/streams/a", json=forbidden)
    assert refused.status_code == 422
    assert refused.json["error"]["details"]["errors"][0]["field"] == "source.details.url"


def test_tombstones_need_the_key_as_the_upstream_sends_it(client: FlaskClient) -> None:
    source = {**DEFINITION["source"], "incremental": {
        "cursor_path": "updated_at", "param": "since", "deleted_path": "deleted"}}
    body = {**DEFINITION, "source": source,
            "middleware": [{"type": "cast", "fields": {"id": "int"}}]}

    response = client.put("/streams/a", json=body)

    assert response.status_code == 422
    error = response.json["error"]["details"]["errors"][0]
    assert error["field"] == "middleware" and "changes the key field 'id'" in error["message"]
