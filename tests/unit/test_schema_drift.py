"""Schema inference, drift across published batches, quarantine on drift, GET /schema."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from app.extensions import Store
from app.publish import drift as schema_drift
from config.streams import StreamDefinition
from tasks import schema_infer
from tasks.middleware import BatchContext, build_chain
from tests.support.seed import Seeder


def infer(records: list[Any]) -> dict[str, Any]:
    builder = schema_infer.SchemaBuilder()
    builder.add(records)
    return builder.result()


def test_infer_reports_types_and_nullability_of_nested_fields() -> None:
    schema = infer([{"id": 1, "price": 2.5, "tags": [], "shop": {"name": "A"}},
                                 {"id": 2, "price": "3", "shop": {"name": None}}])

    assert schema == {"records": 2, "fields": {
        "id": {"types": ["integer"], "nullable": False},
        "price": {"types": ["number", "string"], "nullable": False},
        "shop": {"types": ["object"], "nullable": False},
        "shop.name": {"types": ["string"], "nullable": True},
        "tags": {"types": ["array"], "nullable": True}}}


def test_infer_over_a_page_of_records_of_several_shapes() -> None:
    schema = infer([{"id": 1, "price": 2.5}, {"id": 2}, {"price": None, "id": "3", "tag": [1]},
                    {"id": 4, "price": 3}, {"id": True, "price": 1.5}])

    assert schema == {"records": 5, "fields": {
        "id": {"types": ["boolean", "integer", "string"], "nullable": False},
        "price": {"types": ["integer", "number"], "nullable": True},
        "tag": {"types": ["array"], "nullable": True}}}


def test_infer_keeps_the_first_fields_to_appear_past_the_field_limit(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(schema_infer, "MAX_FIELDS", 3)

    schema = infer([{"a": 1, "b": 1}, {"c": 1, "d": 1}, {"a": 2, "b": 2, "e": 1}])

    assert list(schema["fields"]) == ["a", "b", "c"]
    assert schema["fields"]["c"] == {"types": ["integer"], "nullable": True}


def test_diff_lists_added_removed_and_changed_fields() -> None:
    before = infer([{"id": 1, "price": 2.5, "old": True}])
    after = infer([{"id": "1", "price": 2.5, "new": "x"}])

    drift = schema_drift.diff(before, after)

    assert drift["added"] == ["new"] and drift["removed"] == ["old"]
    assert drift["changed"] == {"id": {"before": {"types": ["integer"], "nullable": False},
                                       "after": {"types": ["string"], "nullable": False}}}
    assert schema_drift.describe(drift) == "added new; removed old; changed id"
    assert not schema_drift.has_drift(schema_drift.diff(after, after))


def define(store: Store, **fields: Any) -> None:
    store.definitions.put("s", StreamDefinition.model_validate(
        {"source": {"url": "http://127.0.0.1:1/x"}, **fields}))


def deliver(seed: Seeder, records: list[Any]) -> int:
    """Run one batch through the worker's chain and the ingest consumer; return its version."""
    definition = seed.store.definitions.get("s")
    assert definition is not None
    batch = seed.batch("s")
    chain = build_chain(definition)
    kept = chain.apply(records, BatchContext("s", batch.version, "2026-01-01T00:00:00Z", 1))
    batch.page(kept)
    batch.complete({"stop_reason": "no_next", "middleware": chain.stats(),
                    "schema": infer(kept)})
    return batch.version


def test_drift_against_the_published_batch_is_stored_and_served(
        seed: Seeder, store: Store, client: FlaskClient) -> None:
    define(store)
    first = deliver(seed, [{"id": 1, "price": 2.5, "old": 1}])
    second = deliver(seed, [{"id": 2, "price": "2.5", "new": 1}])

    batches = {batch["version"]: batch for batch in
               client.get("/streams/s/batches").get_json()["batches"]}
    assert batches[second]["status"] == "complete"
    assert "schema_drift" not in batches[first]
    drift = batches[second]["schema_drift"]
    assert (drift["added"], drift["removed"], list(drift["changed"])) == (
        ["new"], ["old"], ["price"])
    served = client.get("/streams/s/schema").get_json()
    assert served["version"] == second and served["drift"] == drift
    assert served["schema"]["fields"]["price"]["types"] == ["string"]
    assert client.get(f"/streams/s/schema?version={first}").get_json()["schema"][
        "fields"]["price"]["types"] == ["number"]


def test_quarantine_on_drift_keeps_the_published_batch(seed: Seeder, store: Store,
                                                       client: FlaskClient) -> None:
    define(store, on_schema_drift="quarantine")
    first = deliver(seed, [{"id": 1, "price": 2.5}])
    same = deliver(seed, [{"id": 2, "price": 3.0}])
    drifting = deliver(seed, [{"id": 3, "price": "3.0"}])

    assert store.reader.current_version("s") == same != first
    batch = store.reader.batch("s", drifting)
    assert batch["status"] == "quarantined"
    assert batch["quarantine_reason"] == "schema_drift: changed price"
    assert client.get("/streams/s/schema").get_json()["version"] == same


def test_counts_and_samples_reach_the_batch_metadata(seed: Seeder, store: Store,
                                                     client: FlaskClient) -> None:
    define(store, middleware=[{"type": "cast", "fields": {"price": "float"}}])
    version = deliver(seed, [{"id": 1, "price": "1"}, {"id": 2, "price": "x"}])

    batch = client.get(f"/streams/s/batches/{version}").get_json()["batch"]

    assert batch["status"] == "complete" and batch["records"] == 1
    step = batch["middleware"]["steps"][0]
    assert (step["type"], step["dropped"], step["samples"][0]["key"]) == ("cast", 1, 2)


def test_quarantined_records_hold_the_batch_for_review(seed: Seeder, store: Store) -> None:
    define(store, middleware=[{"type": "validate", "on_invalid": "quarantine",
                               "schema": {"type": "object", "required": ["id"]}}])
    version = deliver(seed, [{"id": 1}, {"name": "no id"}])

    batch = store.reader.batch("s", version)

    assert batch["status"] == "quarantined"
    assert batch["quarantine_reason"] == (
        "invalid_records: 1 records set aside by middleware 0 (validate)")


@pytest.mark.parametrize("records", [[], [{"id": 1}]])
def test_no_schema_yet_is_a_404_or_a_schema(seed: Seeder, store: Store, client: FlaskClient,
                                            records: list[Any]) -> None:
    define(store, publish_gate={"allow_empty": True})
    assert client.get("/streams/s/schema").status_code == 404
    deliver(seed, records)

    answer = client.get("/streams/s/schema").get_json()

    assert answer["schema"]["records"] == len(records) and answer["drift"] is None
