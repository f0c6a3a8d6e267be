"""The fetch task's side of middleware: chain per batch, held records, schema in info."""

from __future__ import annotations

from typing import Any

from flask import Flask
from pytest_httpserver import HTTPServer

from app.extensions import Store
from config.streams import StreamDefinition
from tasks.fetch import run_batch


class RecordingOutbox:
    """Stands in for the ingest queue: keeps what the worker would send."""

    def __init__(self) -> None:
        self.pages: dict[int, list[tuple[float, str]]] = {}
        self.totals: tuple[int, int, dict[str, Any]] | None = None

    def page(self, number: int, entries: list[tuple[float, str]]) -> None:
        self.pages[number] = list(entries)

    def complete(self, pages: int, records: int, info: dict[str, Any]) -> None:
        self.totals = (pages, records, info)


def test_dedupe_last_sends_a_final_page_and_the_schema_covers_every_page(
        app: Flask, store: Store, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/items").respond_with_json(
        {"items": [{"id": 1, "v": "old"}, {"id": 2, "v": 2}], "next": httpserver.url_for("/p2")})
    httpserver.expect_request("/p2").respond_with_json(
        {"items": [{"id": 1, "v": "new"}], "next": None})
    definition = StreamDefinition.model_validate({
        "source": {"url": httpserver.url_for("/items"), "records_path": "items",
                   "pagination": {"type": "next_url"}},
        "middleware": [{"type": "dedupe", "keep": "last"},
                       {"type": "add_fields", "context": ["_page"]}]})
    app.config["ALLOWED_SOURCE_HOSTS"] = ["127.0.0.1", "localhost"]
    lease = store.locks.acquire("s")
    assert lease is not None
    outbox = RecordingOutbox()

    with app.app_context():
        result = run_batch(store, definition, lease, outbox)  # type: ignore[arg-type]

    assert result["records"] == 2
    assert [len(outbox.pages[n]) for n in sorted(outbox.pages)] == [0, 0, 2]
    assert [member for _, member in outbox.pages[3]] == [
        '{"_page":3,"id":2,"v":2}', '{"_page":3,"id":1,"v":"new"}']
    assert outbox.totals is not None
    pages, records, info = outbox.totals
    assert (pages, records) == (3, 2)
    assert info["schema"]["fields"]["v"] == {"types": ["integer", "string"], "nullable": False}
    assert info["middleware"]["steps"][0]["dropped"] == 1
