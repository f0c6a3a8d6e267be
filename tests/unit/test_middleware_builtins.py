"""Each built-in middleware on realistic records: nested, missing fields, wrong types."""

from __future__ import annotations

from typing import Any

import pytest

from app.exceptions import MiddlewareError
from config.streams import StreamDefinition
from tasks.middleware import BatchContext, Chain, build_chain

CONTEXT = BatchContext(stream="orders", version=7, fetched_at="2026-01-02T03:04:05.000Z",
                       page=1, source_url="http://127.0.0.1:9/orders")


def chain_of(*middleware: dict[str, Any], key: str = "id") -> Chain:
    definition = StreamDefinition.model_validate(
        {"source": {"url": "http://127.0.0.1:9/orders"}, "key": key,
         "middleware": list(middleware)})
    return build_chain(definition)


def run(chain: Chain, *pages: list[Any]) -> list[Any]:
    out: list[Any] = []
    for number, records in enumerate(pages, start=1):
        out += chain.apply(records, BatchContext(**{**CONTEXT.__dict__, "page": number}))
    return out + [record for page in chain.finish(CONTEXT) for record in page]


ORDERS: list[dict[str, Any]] = [
    {"id": 1, "status": "paid", "total": "12.50", "customer": {"name": "Ada",
                                                                "address": {"city": "Oslo"}}},
    {"id": 2, "status": "open", "total": 8, "customer": {"name": "Bo"}},
    {"id": 3, "total": None, "customer": None},
]


def test_select_keeps_listed_and_nested_fields_and_ignores_missing() -> None:
    out = run(chain_of({"type": "select", "fields": ["id", "customer.address.city"]}), ORDERS)

    assert out == [{"id": 1, "customer": {"address": {"city": "Oslo"}}}, {"id": 2}, {"id": 3}]


def test_drop_removes_fields_without_touching_the_input() -> None:
    records = [dict(record) for record in ORDERS]

    out = run(chain_of({"type": "drop", "fields": ["status", "customer.name"]}), records)

    assert out[0] == {"id": 1, "total": "12.50", "customer": {"address": {"city": "Oslo"}}}
    assert out[2] == {"id": 3, "total": None, "customer": None}
    assert records[0]["customer"]["name"] == "Ada"


def test_rename_moves_top_level_and_nested_fields() -> None:
    out = run(chain_of({"type": "rename", "fields": {"customer.address.city": "city",
                                                     "status": "state"}}), ORDERS)

    assert out[0]["city"] == "Oslo" and out[0]["state"] == "paid"
    assert out[0]["customer"] == {"name": "Ada", "address": {}}
    assert "state" not in out[2]


def test_add_fields_adds_constants_and_context_values() -> None:
    out = run(chain_of({"type": "add_fields", "fields": {"origin": "shop", "meta.v": 2},
                        "context": ["_fetched_at", "_batch_version", "_source_url"]}),
              ORDERS[:1])

    assert out[0]["origin"] == "shop" and out[0]["meta"] == {"v": 2}
    assert out[0]["_fetched_at"] == "2026-01-02T03:04:05.000Z"
    assert out[0]["_batch_version"] == 7
    assert out[0]["_source_url"] == "http://127.0.0.1:9/orders"


def test_filter_with_and_or_not_and_in_counts_what_it_drops() -> None:
    chain = chain_of({"type": "filter", "condition": {"or": [
        {"and": [{"field": "status", "op": "in", "value": ["paid", "shipped"]},
                 {"field": "customer.address.city", "op": "eq", "value": "Oslo"}]},
        {"not": {"field": "status", "op": "exists"}}]}})

    out = run(chain, ORDERS)

    assert [record["id"] for record in out] == [1, 3]
    stats = chain.stats()["steps"][0]
    assert stats["dropped"] == 1 and stats["samples"][0]["key"] == 2


@pytest.mark.parametrize(("op", "value", "expected"), [
    ("gt", 5, [2]), ("le", 8, [2]), ("ne", 8, [1, 3]), ("lt", "9", [1]), ("eq", None, [3])])
def test_filter_comparisons_are_strict_about_types(op: str, value: Any,
                                                   expected: list[int]) -> None:
    chain = chain_of({"type": "filter", "condition": {"field": "total", "op": op,
                                                      "value": value}})

    assert [record["id"] for record in run(chain, ORDERS)] == expected


def test_flatten_joins_nested_names_up_to_the_depth_limit() -> None:
    out = run(chain_of({"type": "flatten", "max_depth": 1}), ORDERS)

    assert out[0] == {"id": 1, "status": "paid", "total": "12.50", "customer__name": "Ada",
                      "customer__address": {"city": "Oslo"}}
    assert out[2]["customer"] is None
    deep = run(chain_of({"type": "flatten"}), ORDERS[:1])
    assert deep[0]["customer__address__city"] == "Oslo"


def test_cast_converts_types_and_drops_what_it_cannot_cast() -> None:
    chain = chain_of({"type": "cast", "fields": {"total": "float", "id": "string",
                                                 "paid_at": "datetime", "vip": "bool"}})
    records = [{"id": 1, "total": "12.50", "paid_at": 1767323045, "vip": "yes"},
               {"id": 2, "total": "twelve"},
               {"id": 3, "total": None, "paid_at": "2026-01-02T03:04:05+00:00"}]

    out = run(chain, records)

    assert out[0] == {"id": "1", "total": 12.5, "paid_at": "2026-01-02T03:04:05Z",
                      "vip": True}
    assert out[1] == {"id": "3", "total": None, "paid_at": "2026-01-02T03:04:05Z"}
    stats = chain.stats()["steps"][0]
    assert stats["dropped"] == 1 and "total=\"twelve\" to float" in stats["samples"][0]["reason"]


@pytest.mark.parametrize(("policy", "expected"), [("null", None), ("keep", "1.5")])
def test_cast_on_error_null_or_keep_counts_a_failure(policy: str, expected: Any) -> None:
    chain = chain_of({"type": "cast", "fields": {"qty": "int"}, "on_error": policy})

    out = run(chain, [{"id": 1, "qty": "1.5"}, {"id": 2, "qty": True}])

    assert out[0]["qty"] == expected and len(out) == 2
    assert chain.stats()["steps"][0]["failed"] == 2


def test_cast_on_error_fail_fails_the_batch_naming_the_middleware() -> None:
    chain = chain_of({"type": "select", "fields": ["id", "qty"]},
                     {"type": "cast", "fields": {"qty": "int"}, "on_error": "fail"})

    with pytest.raises(MiddlewareError) as raised:
        run(chain, [{"id": 1, "qty": "lots"}])

    error = raised.value.to_dict()
    assert error["kind"] == "middleware" and error["middleware"] == {"index": 1, "type": "cast"}
    assert error["page"] == 1 and "qty" in error["message"]


def test_dedupe_keeps_the_first_across_pages() -> None:
    chain = chain_of({"type": "dedupe"})

    out = run(chain, [{"id": 1, "v": "a"}, {"id": 2}], [{"id": 1, "v": "b"}, {"v": "no key"}])

    assert out == [{"id": 1, "v": "a"}, {"id": 2}, {"v": "no key"}]
    stats = chain.stats()["steps"][0]
    assert (stats["dropped"], stats["failed"]) == (1, 1)


def test_dedupe_keeping_the_first_remembers_every_key_of_large_pages() -> None:
    chain = chain_of({"type": "dedupe"})
    first = [{"id": n, "v": "first"} for n in range(1200)]
    second = [{"id": n, "v": "again"} for n in range(600, 1800)]

    out = run(chain, first, second, [*second[::-1], {"id": 5, "v": "last"}])

    assert out == [*first, *({"id": n, "v": "again"} for n in range(1200, 1800))]
    step = chain.stats()["steps"][0]
    assert (step["in"], step["out"], step["dropped"]) == (3601, 1800, 1801)


def test_dedupe_keeping_the_last_holds_records_until_the_batch_ends() -> None:
    chain = chain_of({"type": "dedupe", "key": ["customer", "day"], "keep": "last"})
    pages = [[{"customer": "a", "day": 1, "v": 1}, {"customer": "b", "day": 1, "v": 2}],
             [{"customer": "a", "day": 1, "v": 3}]]

    first = chain.apply(pages[0], CONTEXT)
    second = chain.apply(pages[1], CONTEXT)
    held = [record for page in chain.finish(CONTEXT) for record in page]

    assert first == [] and second == []
    assert held == [{"customer": "b", "day": 1, "v": 2}, {"customer": "a", "day": 1, "v": 3}]
    assert chain.stats()["steps"][0] | {"samples": []} == {
        "index": 0, "type": "dedupe", "in": 3, "out": 2, "dropped": 1, "failed": 0,
        "quarantined": 0, "samples": []}


def test_dedupe_keeping_the_last_releases_pages_in_the_order_of_last_occurrence() -> None:
    chain = chain_of({"type": "dedupe", "keep": "last"},
                     {"type": "add_fields", "context": ["_page"]})
    # 2,500 keys over three pages; every key seen again later, keyless records among them.
    pages = [[{"id": n, "v": "old", "t": (n,)} for n in range(1250)],
             [{"v": "keyless"}, *({"id": n, "v": "new"} for n in range(1250, 2500))],
             [{"id": n, "v": "newest"} for n in range(0, 2500, 2)]]

    for number, page in enumerate(pages, start=1):
        assert chain.apply(page, BatchContext(**{**CONTEXT.__dict__, "page": number})) == []
    released = list(chain.finish(BatchContext(**{**CONTEXT.__dict__, "page": 4})))

    assert [len(page) for page in released] == [1000, 1000, 501]
    assert [{page[0]["_page"], page[-1]["_page"]} for page in released] == [{4}, {5}, {6}]
    records = [record for page in released for record in page]
    odd = [{"id": n, "v": "old", "t": (n,)} for n in range(1, 1250, 2)]
    assert [{k: r[k] for k in r if k != "_page"} for r in records] == [
        *odd, {"v": "keyless"}, *({"id": n, "v": "new"} for n in range(1251, 2500, 2)),
        *({"id": n, "v": "newest"} for n in range(0, 2500, 2))]
    step = chain.stats()["steps"][0]
    assert (step["in"], step["out"], step["dropped"], step["failed"]) == (3751, 2501, 1250, 1)
    drops = [sample for sample in step["samples"] if sample["outcome"] == "dropped"]
    assert [(sample["page"], sample["key"]) for sample in drops[:3]] == [(3, 0), (3, 2),
                                                                        (3, 4)]


SCHEMA = {"type": "object", "required": ["id", "total"],
          "properties": {"id": {"type": "integer"}, "total": {"type": "number"}}}


def test_validate_drops_invalid_records_with_reasons() -> None:
    chain = chain_of({"type": "validate", "schema": SCHEMA})

    out = run(chain, [*ORDERS, "not an object"])

    assert [record["id"] for record in out] == [2]
    reasons = [sample["reason"] for sample in chain.stats()["steps"][0]["samples"]]
    assert reasons[0] == "total: '12.50' is not of type 'number'"
    assert len(reasons) == 3


def test_validate_quarantine_sets_records_aside_and_fail_fails() -> None:
    quarantine = chain_of({"type": "validate", "schema": SCHEMA, "on_invalid": "quarantine"})
    run(quarantine, ORDERS)
    assert quarantine.stats()["quarantined"] == 2

    with pytest.raises(MiddlewareError, match=r"middleware 0 \(validate\).*record 1"):
        run(chain_of({"type": "validate", "schema": SCHEMA, "on_invalid": "fail"}), ORDERS)


def test_validate_never_loads_a_schema_from_outside() -> None:
    # Stored without the PUT check (it runs for new definitions only), as an older one was.
    remote = {"properties": {"id": {"$ref": "http://127.0.0.1:9/schema.json"}}}
    with pytest.raises(MiddlewareError, match=r"middleware 0 \(validate\).*\$ref"):
        chain_of({"type": "validate", "schema": remote})
    # An embedded $id does not open the door: only what the schema holds resolves.
    hidden = {"$id": "http://127.0.0.1:9/root.json", "properties": {"id": {"$ref": "#/$defs/n"}},
              "$defs": {"n": {"type": "integer"}}}
    chain = chain_of({"type": "validate", "schema": hidden})
    assert run(chain, [{"id": 1}, {"id": "x"}]) == [{"id": 1}]
