"""The fetch reads the next upstream page while it sends the current one, and only one."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from flask import Flask

from app.extensions import Store
from config import names
from config.streams import StreamDefinition
from tasks import fetch
from tasks.fetch import run_batch
from tasks.heartbeat import Heartbeat
from tasks.protocol import Outbox
from tasks.upstream.readahead import ReadAhead
from tests.support.seed import InProcess, Seeder
from tests.support.upstream import Feed, Upstream
from tests.support.waiting import wait_for


class WatchingSender(InProcess):
    """Sends in process; before sending page n, waits until the upstream was asked for
    page n + 1 (the read-ahead), and notes how many pages it had served by then."""

    def __init__(self, seed: Seeder, feed: Feed, pages: int) -> None:
        super().__init__(seed.celery.celery_app)
        self.feed, self.pages = feed, pages
        self.served_at_send: dict[int, int] = {}

    def send_task(self, name: str, args: list[Any], queue: str) -> None:
        if name == names.INGEST_PAGE:
            number = args[3]
            wait_for(lambda: self.feed.hits >= min(number + 1, self.pages), 10, 0.01,
                     f"the request of page {number + 1} while page {number} is sent")
            self.served_at_send[number] = self.feed.hits
        super().send_task(name, args, queue)


def define(store: Store, upstream: Upstream, feed: str, **fields: Any) -> StreamDefinition:
    definition = StreamDefinition.model_validate({
        "source": {"url": upstream.url(feed), "records_path": "data",
                   "pagination": {"type": "next_url", "next_url_path": "next"}},
        "key": "id", **fields})
    store.definitions.put("s", definition)
    return definition


def test_the_next_page_is_fetched_while_a_page_is_sent_and_pages_go_in_order(
        app: Flask, store: Store, seed: Seeder, upstream: Upstream) -> None:
    feed = upstream.feed("ahead", [{"id": i} for i in range(1, 11)], page_size=2)
    definition = define(store, upstream, "ahead")
    app.config["ALLOWED_SOURCE_HOSTS"] = ["127.0.0.1"]
    assert app.config["FETCH_READ_AHEAD_PAGES"] == 1  # the default
    sender = WatchingSender(seed, feed, pages=5)
    batch = seed.batch("s")

    with app.app_context(), Heartbeat(store.locks, batch.lease, 5) as heartbeat:
        result = run_batch(store, definition, batch.lease, Outbox(sender, batch.lease),
                           heartbeat)

    assert (result["pages"], result["records"]) == (5, 10)
    # Each page was sent once the next was asked for, and never more than one page ahead.
    assert sender.served_at_send == {1: 2, 2: 3, 3: 4, 4: 5, 5: 5}
    sent = [args[3:5] for name, args in sender.sent if name == names.INGEST_PAGE]
    assert [number for number, _ in sent] == [1, 2, 3, 4, 5]
    assert sent[0][1]["members"] == '{"id":1}\n{"id":2}'
    assert seed.status("s", batch.version) == "complete"


def test_an_upstream_error_read_ahead_comes_after_the_pages_before_it(
        app: Flask, store: Store, seed: Seeder, upstream: Upstream,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Page 3 repeats page 2: the pager fails it as a loop, in the read-ahead thread.
    upstream.feed("loop", [{"id": 1}, {"id": 2}, {"id": 3}, {"id": 4}, {"id": 3}, {"id": 4},
                           {"id": 5}, {"id": 6}], page_size=2)
    define(store, upstream, "loop")
    app.config["ALLOWED_SOURCE_HOSTS"] = ["127.0.0.1"]
    monkeypatch.setattr(fetch, "Outbox", lambda _celery, lease: Outbox(seed.celery, lease))

    with pytest.raises(fetch.BatchFailed, match="pagination_loop"):
        fetch.fetch_stream.apply(args=["s"]).get()

    assert [(name.rsplit(".", 1)[-1], args[3] if "page" in name else None)
            for name, args in seed.sent] == [("begin", None), ("page", 1), ("page", 2),
                                             ("fail", None)]
    failed = store.reader.batches("s")[0]
    assert (failed["status"], failed["error"]["kind"], failed["error"]["page"]) == (
        "failed", "pagination_loop", 3)


def test_a_page_that_fails_after_the_fetch_stops_the_reading_ahead(
        app: Flask, store: Store, seed: Seeder, upstream: Upstream,
        monkeypatch: pytest.MonkeyPatch) -> None:
    feed = upstream.feed("bad", [{"id": 1, "t": "NaN"}] + [{"id": i, "t": i}
                                                            for i in range(2, 21)],
                         page_size=2)
    define(store, upstream, "bad", order_by="t")
    app.config["ALLOWED_SOURCE_HOSTS"] = ["127.0.0.1"]
    monkeypatch.setattr(fetch, "Outbox", lambda _celery, lease: Outbox(seed.celery, lease))

    with pytest.raises(fetch.BatchFailed, match="bad_record"):
        fetch.fetch_stream.apply(args=["s"]).get()

    wait_for(lambda: not any(thread.name == "read-ahead" for thread in threading.enumerate()),
             10, 0.01, "the read-ahead thread to end")
    assert feed.hits <= 2  # page 1, and at most the one page read ahead of it
    assert [name.rsplit(".", 1)[-1] for name, _ in seed.sent] == ["begin", "fail"]


def test_depth_zero_reads_each_item_only_when_asked_for_it() -> None:
    taken: list[int] = []

    def items() -> Any:
        for number in range(1, 4):
            taken.append(number)
            yield number

    with ReadAhead(items(), 0) as ahead:
        for number in ahead:
            assert taken == list(range(1, number + 1))
    assert taken == [1, 2, 3]


def test_an_abandoned_read_ahead_closes_its_source_in_its_thread() -> None:
    closed = threading.Event()

    def items() -> Any:
        try:
            yield from range(1, 100)
        finally:
            closed.set()

    with ReadAhead(items(), 2) as ahead:
        for number in ahead:
            if number == 3:
                break

    assert closed.wait(10)
