"""The fetch task's side of middleware: chain per batch, held records, schema in info."""

from __future__ import annotations

from flask import Flask

from app.extensions import Store
from config import names
from config.streams import StreamDefinition
from tasks.fetch import run_batch
from tasks.heartbeat import Heartbeat
from tests.support.seed import Seeder
from tests.support.upstream import Upstream


def test_dedupe_last_sends_a_final_page_and_the_schema_covers_every_page(
        app: Flask, store: Store, seed: Seeder, upstream: Upstream) -> None:
    upstream.feed("dedupe-last", [{"id": 1, "v": "old"}, {"id": 2, "v": 2},
                                  {"id": 1, "v": "new"}], page_size=2)
    definition = StreamDefinition.model_validate({
        "source": {"url": upstream.url("dedupe-last"), "records_path": "data",
                   "pagination": {"type": "next_url", "next_url_path": "next"}},
        "middleware": [{"type": "dedupe", "keep": "last"},
                       {"type": "add_fields", "context": ["_page"]}]})
    store.definitions.put("s", definition)
    app.config["ALLOWED_SOURCE_HOSTS"] = ["127.0.0.1", "localhost"]
    batch = seed.batch("s")

    with app.app_context(), Heartbeat(store.locks, batch.lease, 5) as heartbeat:
        result = run_batch(store, definition, batch.lease, batch.outbox, heartbeat)

    assert result["records"] == 2
    pages = {args[3]: args[4] for name, args in seed.sent if name == names.INGEST_PAGE}
    assert [pages[n]["count"] for n in sorted(pages)] == [0, 0, 2]
    assert pages[3]["members"].split("\n") == [
        '{"_page":3,"id":2,"v":2}', '{"_page":3,"id":1,"v":"new"}']
    [totals] = [args[3:] for name, args in seed.sent if name == names.INGEST_COMPLETE]
    pages_sent, records, info = totals
    assert (pages_sent, records) == (3, 2)
    assert info["schema"]["fields"]["v"] == {"types": ["integer", "string"], "nullable": False}
    assert info["middleware"]["steps"][0]["dropped"] == 1
    assert seed.status("s", batch.version) == "complete"
    assert store.reader.read("s", limit=10).records == pages[3]["members"].split("\n")
