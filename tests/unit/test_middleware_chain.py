"""The chain as a whole: several steps, custom middleware, errors, and PUT-time 422s."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.exceptions import MiddlewareError
from config.streams import StreamDefinition
from tasks.middleware import BatchContext, build_chain

CONTEXT = BatchContext(stream="s", version=3, fetched_at="2026-01-01T00:00:00.000Z", page=1)
SOURCE = {"url": "http://127.0.0.1:9/items"}
EXAMPLES = ["tasks.middleware.examples"]


def definition(*middleware: dict[str, Any]) -> StreamDefinition:
    return StreamDefinition.model_validate({"source": SOURCE, "middleware": list(middleware)})


def test_a_chain_of_several_steps_applies_them_in_order_and_counts_each() -> None:
    chain = build_chain(definition(
        {"type": "flatten", "max_depth": 1},
        {"type": "cast", "fields": {"price": "float"}},
        {"type": "filter", "condition": {"field": "price", "op": "ge", "value": 1}},
        {"type": "dedupe"},
        {"type": "add_fields", "context": ["_batch_version"]},
        {"type": "select", "fields": ["id", "price", "shop__name", "_batch_version"]}))
    page = [{"id": 1, "price": "2.5", "shop": {"name": "A", "geo": {"x": 1}}},
            {"id": 2, "price": "n/a", "shop": {"name": "B"}},
            {"id": 3, "price": 0.5},
            {"id": 1, "price": 3, "shop": {"name": "A2"}}]

    out = chain.apply(page, CONTEXT)

    assert out == [{"id": 1, "price": 2.5, "shop__name": "A", "_batch_version": 3}]
    stats = chain.stats()
    assert [(s["type"], s["in"], s["out"], s["dropped"]) for s in stats["steps"]] == [
        ("flatten", 4, 4, 0), ("cast", 4, 3, 1), ("filter", 3, 2, 1), ("dedupe", 2, 1, 1),
        ("add_fields", 1, 1, 0), ("select", 1, 1, 0)]
    assert stats["dropped"] == 3


def test_samples_stop_at_ten_while_counts_go_on() -> None:
    chain = build_chain(definition({"type": "filter",
                                    "condition": {"field": "keep", "op": "eq", "value": True}}))

    chain.apply([{"id": n} for n in range(25)], CONTEXT)

    step = chain.stats()["steps"][0]
    assert step["dropped"] == 25 and len(step["samples"]) == 10
    assert step["samples"][3] == {"outcome": "dropped", "page": 1, "key": 3,
                                  "reason": step["samples"][3]["reason"]}


def test_allowed_custom_class_and_function_run_and_count() -> None:
    chain = build_chain(definition(
        {"type": "custom", "path": "tasks.middleware.examples.Redact",
         "options": {"fields": ["email"]}},
        {"type": "custom", "path": "tasks.middleware.examples.skip_test_records"}),
        custom_prefixes=EXAMPLES)

    out = chain.apply([{"id": 1, "email": "a@b"}, {"email": "x"},
                       {"id": 2, "tags": ["test"]}], CONTEXT)

    assert out == [{"id": 1, "email": "[redacted]"}]
    steps = chain.stats()["steps"]
    assert steps[0]["type"] == "custom:tasks.middleware.examples.Redact"
    assert steps[0]["dropped"] == 1 and steps[0]["samples"][0]["reason"].startswith("record")
    assert steps[1]["dropped"] == 1 and steps[1]["samples"] == []


def test_custom_path_outside_the_allowed_prefixes_fails_the_batch_at_build() -> None:
    spec = definition({"type": "custom", "path": "tasks.middleware.examples.Redact"})

    with pytest.raises(MiddlewareError) as raised:
        build_chain(spec, custom_prefixes=["tasks.other"])

    assert raised.value.to_dict()["middleware"] == {"index": 0, "type": "custom"}
    assert "not under an allowed module prefix" in raised.value.message


def test_a_raising_custom_middleware_fails_the_batch_naming_it() -> None:
    chain = build_chain(definition(
        {"type": "select", "fields": ["id"]},
        {"type": "custom", "path": "tasks.middleware.examples.skip_test_records",
         "options": {"unknown": 1}}), custom_prefixes=EXAMPLES)

    with pytest.raises(MiddlewareError) as raised:
        chain.apply([{"id": 1}], CONTEXT)

    error = raised.value.to_dict()
    assert error["middleware"] == {"index": 1,
                                   "type": "custom:tasks.middleware.examples.skip_test_records"}
    assert "TypeError" in error["message"] and error["page"] == 1


@pytest.fixture(autouse=True)
def loopback_source(app: Flask) -> None:
    """Let definitions name the loopback upstream (the SSRF guard refuses it by default)."""
    app.config["ALLOWED_SOURCE_HOSTS"] = ["127.0.0.1"]


def put(client: FlaskClient, *middleware: dict[str, Any]) -> Any:
    return client.put("/streams/items", json={"source": SOURCE, "middleware": list(middleware)})


@pytest.mark.parametrize(("middleware", "field"), [
    ({"type": "select", "fields": []}, "middleware.1.select.fields"),
    ({"type": "nope"}, "middleware.1.type"),
    ({"fields": ["a"]}, "middleware.1.type"),
    ({"type": "cast", "fields": {"a": "decimal"}}, "middleware.1.cast.fields.a"),
    ({"type": "flatten", "max_depth": 0}, "middleware.1.flatten.max_depth"),
    ({"type": "filter", "condition": {"field": "a", "op": "in", "value": 1}},
     "middleware.1.filter.condition"),
    ({"type": "validate", "schema": {"type": "nonsense"}}, "middleware.1.validate.schema"),
    ({"type": "custom", "path": "os.system"}, "middleware.1.custom.path"),
])
def test_bad_middleware_is_a_422_naming_index_and_field(client: FlaskClient,
                                                        middleware: dict[str, Any],
                                                        field: str) -> None:
    response = put(client, {"type": "drop", "fields": ["x"]}, middleware)

    assert response.status_code == 422
    errors = response.get_json()["error"]["details"]["errors"]
    assert [error["field"] for error in errors] == [field]


def test_custom_path_is_accepted_only_under_an_allowed_prefix(app: Flask,
                                                              client: FlaskClient) -> None:
    custom = {"type": "custom", "path": "tasks.middleware.examples.Redact",
              "options": {"fields": ["email"]}}
    assert put(client, custom).status_code == 422

    app.config["CUSTOM_MIDDLEWARE_PREFIXES"] = EXAMPLES
    assert put(client, custom).status_code == 201
    missing = put(client, {"type": "custom", "path": "tasks.middleware.examples.Nothing"})
    assert missing.status_code == 422 and "cannot import" in missing.get_json()["error"][
        "message"]
    dunder = put(client, {"type": "custom", "path": "tasks.middleware.examples.__class__"})
    assert dunder.status_code == 422


def test_a_valid_definition_round_trips_through_the_store(client: FlaskClient) -> None:
    condition = {"and": [{"field": "a", "op": "gt", "value": 1},
                         {"not": {"field": "b", "op": "exists"}}]}
    middleware = [{"type": "filter", "condition": condition},
                  {"type": "validate", "schema": {"type": "object"}, "on_invalid": "fail"}]

    assert put(client, *middleware).status_code == 201
    stored = client.get("/streams/items").get_json()["definition"]

    assert stored["middleware"][0] == {"type": "filter", "condition": condition}
    assert stored["middleware"][1]["schema"] == {"type": "object"}
    assert stored["on_schema_drift"] == "ignore"
