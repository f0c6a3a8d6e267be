"""The pipeline end to end on real processes: start, schedule, atomic swap, read, stop.

Every test runs twice: with the store on the broker's one Redis (`make run`'s layout) and
with the store on a Redis Cluster (STORE_URL=redis+cluster://...).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.conftest import Api, serve
from tests.support.upstream import Upstream
from tests.support.waiting import stays, wait_for


@pytest.fixture(params=["one-redis", "cluster"])
def api(request: pytest.FixtureRequest) -> Iterator[Api]:
    """A client of the system whose store is one Redis, then of the one on a cluster."""
    yield from serve(request.getfixturevalue(
        "system" if request.param == "one-redis" else "cluster_system"))


def catalogue(count: int, label: str) -> list[dict[str, object]]:
    return [{"id": i, "label": label, "n": i * 3} for i in range(1, count + 1)]


def test_start_leads_to_a_first_complete_batch(api: Api, upstream: Upstream,
                                                name: str) -> None:
    upstream.feed(name, catalogue(45, "a"), page_size=10)
    api.define(name, upstream.url(name))
    assert api.call("GET", f"/streams/{name}/data").status_code == 404

    started = api.start(name)

    assert started["state"] == "running" and started["interval_seconds"] == 300
    assert started["next_run_at"]
    wait_for(lambda: api.current_version(name), what="first batch")
    version, records = api.read_all(name, limit=7)
    assert records == catalogue(45, "a")
    batch = api.batches(name)[0]
    assert batch["version"] == version and batch["status"] == "complete"
    assert (batch["pages_received"], batch["records"]) == (5, 45)
    assert batch["stop_reason"] == "no_next"


def test_second_batch_replaces_the_first_atomically(api: Api, upstream: Upstream,
                                                    name: str) -> None:
    upstream.feed(name, catalogue(30, "first"), page_size=10)
    api.define(name, upstream.url(name))
    api.start(name, interval_seconds=1)
    first = wait_for(lambda: api.current_version(name), what="first batch")
    upstream.feed(name, catalogue(25, "second"), page_size=10)

    second = wait_for(lambda: (v := api.current_version(name)) and v > first and
                      api.read_all(name)[1][0]["label"] == "second" and v, what="new batch")
    api.stop(name)

    version, records = api.read_all(name)
    assert version >= second
    assert records == catalogue(25, "second")
    old_version, old_records = api.read_all(name, version=first)
    assert old_version == first and old_records == catalogue(30, "first")


def test_reader_never_sees_a_partial_batch(api: Api, upstream: Upstream, name: str) -> None:
    upstream.feed(name, catalogue(40, "old"), page_size=5)
    api.define(name, upstream.url(name))
    api.start(name)
    first = wait_for(lambda: api.current_version(name), what="first batch")
    api.stop(name)
    upstream.feed(name, catalogue(60, "new"), page_size=5, delay=0.25)
    seen: list[tuple[int, int, str]] = []
    done = threading.Event()

    def read_while_writing() -> None:
        while not done.is_set() and len(seen) < 2000:
            version, records = api.read_all(name, limit=9)
            seen.append((version, len(records), records[0]["label"]))

    reader = threading.Thread(target=read_while_writing)
    reader.start()
    api.start(name)
    progress = wait_for(lambda: (b := api.status(name)["in_progress"]) and
                        b.get("pages_received", 0) >= 3 and b, what="batch in progress")
    assert progress["status"] == "running"
    wait_for(lambda: (api.current_version(name) or 0) > first, timeout=30, what="publish")
    done.set()
    reader.join(timeout=30)
    api.stop(name)

    assert {(v, n, label) for v, n, label in seen} <= {(first, 40, "old"),
                                                       (first + 1, 60, "new")}
    assert (first, 40, "old") in seen


def test_stop_leads_to_no_further_batches(api: Api, upstream: Upstream, name: str) -> None:
    upstream.feed(name, catalogue(5, "x"), page_size=10)
    api.define(name, upstream.url(name))
    api.start(name, interval_seconds=1)
    wait_for(lambda: len(api.batches(name)) >= 2, what="two scheduled batches")

    stopped = api.stop(name)

    assert stopped["state"] == "stopped" and stopped["was_running"]
    wait_for(lambda: api.status(name)["in_progress"] is None, what="last batch to end")
    settled = len(api.batches(name))
    stays(lambda: len(api.batches(name)) == settled, seconds=4, what="no new batch")
    assert api.status(name)["state"] == "stopped"
    assert api.call("GET", f"/streams/{name}/data").status_code == 200


def test_start_and_stop_are_idempotent(api: Api, upstream: Upstream, name: str) -> None:
    upstream.feed(name, catalogue(3, "x"), page_size=10)
    api.define(name, upstream.url(name))

    first = api.start(name, interval_seconds=600)
    again = api.start(name, interval_seconds=900)

    assert first["already_running"] is False and first["queued_task"]
    assert again["already_running"] is True and again["queued_task"] is None
    assert again["interval_seconds"] == 900
    wait_for(lambda: api.current_version(name), what="the one immediate batch")
    assert len(api.batches(name)) == 1
    assert api.stop(name)["was_running"] is True
    second_stop = api.stop(name)
    assert second_stop["was_running"] is False and second_stop["state"] == "stopped"
    entries = list(api.system.redis.scan_iter("{redbeat}:stream:*"))
    assert entries == []


def test_middleware_and_order_by_shape_what_is_stored(api: Api, upstream: Upstream,
                                                      name: str) -> None:
    records = [{"id": i, "at": f"2024-01-{31 - i:02d}T00:00:00Z", "secret": "x",
                "nested": {"k": i}} for i in range(1, 21)]
    upstream.feed(name, records, page_size=6)
    api.define(name, upstream.url(name), order_by="at", middleware=[
        {"type": "filter", "condition": {"field": "id", "op": "le", "value": 10}},
        {"type": "drop", "fields": ["secret"]},
        {"type": "flatten", "max_depth": 1},
        {"type": "add_fields", "context": ["_batch_version"]}])

    api.start(name)
    version = wait_for(lambda: api.current_version(name), what="first batch")

    _, stored = api.read_all(name)
    assert [r["id"] for r in stored] == list(range(10, 0, -1))
    assert stored[0] == {"id": 10, "at": "2024-01-21T00:00:00Z", "nested__k": 10,
                         "_batch_version": version}
    steps = api.batches(name)[0]["middleware"]["steps"]
    assert steps[0]["in"] == 20 and steps[0]["out"] == 10


def test_a_failed_batch_is_a_failed_task_in_flowers_events(api: Api, upstream: Upstream,
                                                           name: str) -> None:
    """Flower counts what the workers' task events say: a failed batch must say failed."""
    events: list[dict[str, Any]] = []
    celery_app = api.system.celery
    with celery_app.connection_for_read() as connection:
        receiver = celery_app.events.Receiver(connection, handlers={"*": events.append})
        listener = threading.Thread(target=receiver.capture,
                                    kwargs={"limit": None, "wakeup": False}, daemon=True)
        listener.start()
        try:
            wait_for(lambda: events, what="worker events (heartbeats) to flow")
            upstream.feed(name, [{"id": 1}], status=503)
            response = api.call("PUT", f"/streams/{name}", json={
                "source": {"url": upstream.url(name), "records_path": "data",
                           "max_attempts": 1}, "key": "id"})
            assert response.status_code == 201, response.text
            task_id = api.start(name)["queued_task"]
            failed = wait_for(lambda: [e for e in events if e["type"] == "task-failed"
                                       and e["uuid"] == task_id], what="task-failed event")
        finally:
            receiver.should_stop = True
            listener.join(timeout=10)
    assert "BatchFailed" in failed[0]["exception"]
    assert "http_status: upstream answered 503" in failed[0]["exception"]
    assert not [e for e in events if e["type"] == "task-succeeded" and e["uuid"] == task_id]
    wait_for(lambda: api.batches(name)[0]["status"] == "failed", what="the batch failed")
    api.stop(name)
