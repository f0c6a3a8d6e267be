"""Incremental streams end to end in one process: the fetch task against a real local
upstream (tests/support/catalog.py), the ingest tasks and the publish step on fakeredis."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from flask import Flask

from app.exceptions import UpstreamError
from app.extensions import Store
from config.streams import StreamDefinition
from tasks.fetch import run_batch
from tasks.heartbeat import Heartbeat
from tasks.incremental import shifted
from tests.support.catalog import Catalog, stamp
from tests.support.seed import Seeder
from tests.support.upstream import Upstream
from tests.support.waiting import wait_for


@pytest.fixture
def catalog(app: Flask, upstream: Upstream, request: pytest.FixtureRequest) -> Catalog:
    app.config["ALLOWED_SOURCE_HOSTS"] = ["127.0.0.1"]
    shop = upstream.catalog(request.node.name[:40], page_size=3)
    for key in range(1, 8):
        shop.put(key, name=f"item {key}", detail={"price": key * 10})
    return shop


def define(store: Store, upstream: Upstream, catalog: Catalog, **source: Any) -> str:
    base = f"{upstream.base_url}/catalogs/{catalog.name}"
    spec = {"url": f"{base}/items", "records_path": "data",
            "pagination": {"type": "next_url", "next_url_path": "next"},
            "incremental": {"cursor_path": "updated_at", "param": "updated_since",
                            "deleted_path": "deleted"},
            "details": {"url": f"{base}/items/{{id}}"}}
    store.definitions.put("shop", StreamDefinition.model_validate(
        {"source": {**spec, **source}, "key": "id", "publish_gate": {"allow_empty": True}}))
    return "shop"


def run(app: Flask, store: Store, seed: Seeder, name: str = "shop") -> dict[str, Any]:
    """Run one batch as the fetch task runs it; return the batch's metadata."""
    definition = store.definitions.get(name)
    assert definition is not None
    batch = seed.batch(name)
    with app.app_context(), Heartbeat(store.locks, batch.lease, 5) as heartbeat:
        try:
            run_batch(store, definition, batch.lease, batch.outbox, heartbeat)
        except UpstreamError as exc:  # as the fetch task ends a batch that failed
            batch.outbox.fail(exc.to_dict())
    return store.reader.batch(name, batch.version)


def served(store: Store, name: str = "shop") -> list[Any]:
    records = [orjson.loads(member) for member in store.reader.read(name, limit=1000).records]
    return sorted(records, key=lambda record: str(record["id"]))


def by_id(records: list[Any]) -> list[Any]:
    return sorted(records, key=lambda record: str(record["id"]))


def test_incremental_batches_upsert_delete_and_a_refresh_finds_hard_deletes(
        app: Flask, store: Store, seed: Seeder, upstream: Upstream, catalog: Catalog) -> None:
    define(store, upstream, catalog)
    first = run(app, store, seed)
    assert first["status"] == "complete" and first["incremental"]["mode"] == "full"
    assert served(store) == by_id(catalog.expected())
    assert sorted(catalog.detail_ids(), key=int) == [str(k) for k in range(1, 8)]
    assert first["incremental"]["cursor"] == stamp(7)

    catalog.requests.clear()
    catalog.put(2, name="item 2 v2", detail={"price": 21})
    catalog.put(8, name="item 8", detail={"price": 80})
    catalog.delete(3)
    second = run(app, store, seed)

    assert second["status"] == "complete" and second["base"] == first["version"]
    assert served(store) == by_id(catalog.expected())
    lists = [seen.query for seen in catalog.saw("/items")]
    assert lists == [{"updated_since": stamp(7)}, {"updated_since": stamp(7), "page": "2"}]
    assert sorted(catalog.detail_ids()) == ["2", "8"]  # not 7, refetched at the boundary
    assert second["incremental"]["skipped"] == 1
    assert second["changes"] == {"from": first["version"], "added": 1, "updated": 1,
                                 "removed": 1}
    feed = store.change_feed.read("shop", first["version"], second["version"], limit=100)
    assert (len(feed.added), len(feed.updated), feed.removed) == (1, 1, ["3"])

    catalog.requests.clear()
    quiet = run(app, store, seed)
    assert quiet["status"] == "unchanged"
    assert store.reader.current_version("shop") == second["version"]
    assert catalog.detail_ids() == []

    catalog.delete(5, tombstone=False)
    catalog.put(6, name="item 6 v2")
    third = run(app, store, seed)
    assert third["status"] == "complete" and third["base"] == second["version"]
    assert 5 in [record["id"] for record in served(store)]  # nobody told us yet

    store.full_refresh.ask("shop")
    catalog.requests.clear()
    full = run(app, store, seed)
    assert full["incremental"] == {**full["incremental"], "mode": "full", "reason": "requested"}
    assert catalog.saw("/items")[0].query == {}
    assert served(store) == by_id(catalog.expected())
    assert full["changes"]["removed"] == 1


def test_a_failed_batch_refetches_the_same_window(
        app: Flask, store: Store, seed: Seeder, upstream: Upstream, catalog: Catalog) -> None:
    define(store, upstream, catalog)
    run(app, store, seed)
    catalog.put(4, name="item 4 v2")
    catalog.broken.add(4)
    catalog.requests.clear()

    failed = run(app, store, seed)

    assert failed["status"] == "failed" and failed["error"]["kind"] == "http_status"
    assert "record 1 of page 1" in failed["error"]["message"]
    assert "item 4 not found" in failed["error"]["message"]  # the upstream's own words
    catalog.broken.clear()
    catalog.requests.clear()
    retried = run(app, store, seed)
    assert retried["status"] == "complete"
    assert catalog.saw("/items")[0].query == {"updated_since": stamp(7)}
    assert served(store) == by_id(catalog.expected())


def test_tolerated_detail_failures_are_counted_and_sampled(
        app: Flask, store: Store, seed: Seeder, upstream: Upstream, catalog: Catalog) -> None:
    base = f"{upstream.base_url}/catalogs/{catalog.name}"
    define(store, upstream, catalog, details={"url": f"{base}/items/{{id}}", "into": "more",
                                              "max_failed_ratio": 0.2, "concurrency": 2})
    catalog.broken.add(6)

    batch = run(app, store, seed)

    assert batch["status"] == "complete"
    assert batch["details"]["requests"] == 7 and batch["details"]["failed"] == 1
    assert batch["details"]["samples"][0]["url"].endswith("/items/6")
    assert [record["id"] for record in served(store)] == [1, 2, 3, 4, 5, 7]
    assert served(store)[0]["more"] == {"id": 1, "price": 10}

    catalog.broken.update({1, 2})
    store.full_refresh.ask("shop")
    too_many = run(app, store, seed)
    assert too_many["status"] == "failed" and too_many["error"]["kind"] == "details"
    assert "3 of 7 detail requests failed" in too_many["error"]["message"]


def test_graphql_cursor_variables_and_a_body_cursor(
        app: Flask, store: Store, seed: Seeder, upstream: Upstream, catalog: Catalog) -> None:
    query = "query($since: String, $after: String) { items(since: $since, after: $after) }"
    define(store, upstream, catalog, url=f"{upstream.base_url}/catalogs/{catalog.name}/graphql",
           method="POST", body={"query": query, "variables": {"after": None}},
           records_path="data.items.nodes", details=None,
           pagination={"type": "cursor", "cursor_path": "data.items.pageInfo.endCursor",
                       "cursor_param": "variables.after", "params_in": "body",
                       "has_more_path": "data.items.pageInfo.hasNextPage"},
           incremental={"cursor_path": "updated_at", "param": "variables.since",
                        "param_in": "body", "deleted_path": "deleted"})
    run(app, store, seed)
    catalog.put(9, name="item 9")
    catalog.delete(1)
    catalog.requests.clear()

    second = run(app, store, seed)

    assert second["status"] == "complete"
    bodies = [seen.body for seen in catalog.saw("/graphql")]
    assert bodies[0]["variables"] == {"after": None, "since": stamp(7)}
    assert bodies[0]["query"] == query
    assert [record["id"] for record in served(store)] == [2, 3, 4, 5, 6, 7, 9]


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_json_lines_and_csv_pages(app: Flask, store: Store, seed: Seeder, upstream: Upstream,
                                  catalog: Catalog, fmt: str) -> None:
    url = f"{upstream.base_url}/catalogs/{catalog.name}/items.{fmt}"
    deleted = {"deleted_path": "deleted", "deleted_value": "yes" if fmt == "csv" else True}
    define(store, upstream, catalog, url=url, format=fmt, details=None, records_path="",
           pagination={"type": "link_header"},
           incremental={"cursor_path": "updated_at", "param": "updated_since", **deleted})
    run(app, store, seed)
    catalog.put(2, name="two")
    catalog.delete(3)

    second = run(app, store, seed)

    assert second["status"] == "complete"
    names = {str(record["id"]): record["name"] for record in served(store)}
    assert names == {str(item["id"]): item["name"] for item in catalog.expected()}
    if fmt == "csv":
        assert all(isinstance(value, str) for record in served(store) for value in
                   record.values() if value != "")


def test_post_search_with_the_page_and_cursor_in_the_body(
        app: Flask, store: Store, seed: Seeder, upstream: Upstream, catalog: Catalog) -> None:
    define(store, upstream, catalog, url=f"{upstream.base_url}/catalogs/{catalog.name}/search",
           method="POST", body={"filter": {}}, details=None,
           pagination={"type": "page_number", "page_size": 3, "params_in": "body"},
           incremental={"cursor_path": "updated_at", "param": "filter.since",
                        "param_in": "body", "lag": 2})
    run(app, store, seed)
    catalog.put(7, name="seven")
    catalog.requests.clear()

    second = run(app, store, seed)

    assert catalog.saw("/search")[0].body == {"filter": {"since": stamp(5)}, "page": 1}
    assert second["incremental"]["sent"] == stamp(5)  # the cursor less the 2 s lag
    assert second["status"] == "complete"
    assert served(store) == by_id([{k: v for k, v in item.items() if k != "price"}
                                   for item in catalog.expected()])


def test_reasons_name_the_page_and_the_record(
        app: Flask, store: Store, seed: Seeder, upstream: Upstream, catalog: Catalog) -> None:
    define(store, upstream, catalog, incremental={"cursor_path": "modified",
                                                  "param": "since"})
    no_cursor = run(app, store, seed)
    assert no_cursor["status"] == "failed" and no_cursor["error"]["kind"] == "cursor_missing"
    assert no_cursor["error"]["message"].startswith("record 1 of page 1 has no cursor field")

    base = f"{upstream.base_url}/catalogs/{catalog.name}"
    define(store, upstream, catalog, details={"url": f"{base}/items/{{sku}}"})
    no_field = run(app, store, seed)
    assert no_field["error"]["kind"] == "details_template"
    assert "{sku}, which record 1 of page 1 does not have" in no_field["error"]["message"]


def test_full_refresh_every_counts_batches_or_seconds(
        app: Flask, store: Store, seed: Seeder, upstream: Upstream, catalog: Catalog) -> None:
    define(store, upstream, catalog, incremental={
        "cursor_path": "updated_at", "param": "updated_since",
        "full_refresh_every": {"batches": 3}})
    modes = [run(app, store, seed)["incremental"]["mode"] for _ in range(5)]
    assert modes == ["full", "incremental", "incremental", "full", "incremental"]

    define(store, upstream, catalog, incremental={
        "cursor_path": "updated_at", "param": "updated_since",
        "full_refresh_every": {"seconds": 1}})
    due = wait_for(lambda: (batch := run(app, store, seed))["incremental"]["mode"] == "full"
                   and batch, timeout=10, interval=0.2, what="a full batch after 1 s")
    assert due["incremental"]["reason"] == "full_refresh_every"


@pytest.mark.parametrize(("value", "lag", "sent"), [
    ("2026-01-01T00:00:10Z", 5, "2026-01-01T00:00:05Z"),
    ("2026-01-01T00:00:10.250+02:00", 0.5, "2026-01-01T00:00:09.750+02:00"),
    ("2026-01-01T00:00:10", 60, "2025-12-31T23:59:10"),
    (100, 5, 95), ("100", 5, "95"), (1.5, 0.5, 1.0), ("x", 0, "x")])
def test_lag_moves_the_cursor_back_in_the_upstream_s_own_spelling(
        value: Any, lag: float, sent: Any) -> None:
    assert shifted(value, lag) == sent


def test_a_header_cursor_an_initial_value_and_a_quarantine_that_keeps_the_window(
        app: Flask, store: Store, seed: Seeder, upstream: Upstream, catalog: Catalog) -> None:
    incremental = {"cursor_path": "updated_at", "param": "X-Updated-Since",
                   "param_in": "header", "deleted_path": "deleted",
                   "initial_value": stamp(3)}
    define(store, upstream, catalog, details=None, incremental=incremental)
    first = run(app, store, seed)
    assert catalog.saw("/items")[0].headers["X-Updated-Since"] == stamp(3)
    assert [record["id"] for record in served(store)] == [3, 4, 5, 6, 7]
    definition = store.definitions.get("shop")
    assert definition is not None
    store.definitions.put("shop", definition.model_copy(update={
        "publish_gate": definition.publish_gate.model_copy(update={"max_drop_ratio": 0.3})}))
    for key in (3, 4, 5):
        catalog.delete(key)
    catalog.requests.clear()

    held = run(app, store, seed)

    assert held["status"] == "quarantined" and held["base"] == first["version"]
    assert catalog.saw("/items")[0].headers["X-Updated-Since"] == stamp(7)
    catalog.requests.clear()
    again = run(app, store, seed)
    assert again["status"] == "quarantined"
    assert catalog.saw("/items")[0].headers["X-Updated-Since"] == stamp(7)
