"""Faults 6 and 7: readers while a batch is published every second; the publish gate (at
its default), and the history of a stream whose every batch fails."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from app.store.keys import StreamKeys
from devtools.system import System
from tests.faults.conftest import catalogue, launch
from tests.integration.conftest import Api
from tests.support.upstream import Upstream
from tests.support.waiting import wait_for

pytestmark = pytest.mark.faults

RECORDS, LIMIT = 40, 7


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    server, running = launch(tmp_path_factory.mktemp("publishing"), "publishing",
                             KEEP_VERSIONS="1", HISTORY_LENGTH="4", INGEST_CONCURRENCY="1")
    yield running
    running.stop_all()
    server.stop()


@pytest.fixture
def api(system: System) -> Api:
    return Api(system)


class Reading:
    """One reader paging through whole versions with cursors until told to stop."""

    def __init__(self, api: Api, name: str) -> None:
        self.api, self.name = api, name
        self.statuses: dict[int, int] = {}
        self.problems: list[str] = []
        self.whole_reads = 0

    def page(self, cursor: str | None) -> dict[str, Any] | None:
        params: dict[str, Any] = {"limit": LIMIT, **({"cursor": cursor} if cursor else {})}
        response = self.api.call("GET", f"/streams/{self.name}/data", params=params)
        self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
        if response.status_code == 410:
            if response.json()["error"]["code"] != "gone":
                self.problems.append(f"410 without the JSON error: {response.text}")
            return None
        if response.status_code != 200:
            self.problems.append(f"{response.status_code}: {response.text[:200]}")
            return None
        return response.json()

    def read_version(self) -> None:
        cursor, count = None, 0
        labels: set[str] = set()
        versions: set[int] = set()
        for _ in range(RECORDS // LIMIT + 2):
            body = self.page(cursor)
            if body is None:
                return
            if not body["records"]:
                self.problems.append(f"empty page of version {body['version']}")
            versions.add(body["version"])
            labels.update(r["label"] for r in body["records"])
            count += len(body["records"])
            cursor = body["next_cursor"]
            if cursor is None:
                break
        if len(versions) != 1 or len(labels) != 1 or count != RECORDS:
            self.problems.append(f"mixed read: {versions} {labels} {count} records")
        self.whole_reads += 1

    def run(self, done: threading.Event) -> None:
        for _ in range(10_000):
            if done.is_set():
                return
            self.read_version()


def test_readers_during_publishing_see_whole_single_version_pages(
        system: System, api: Api, upstream: Upstream, name: str) -> None:
    # One upstream page per batch, so each batch is one snapshot of the changing content.
    feed = upstream.feed(name, catalogue(RECORDS, "v0"), page_size=RECORDS)
    api.define(name, upstream.url(name))
    api.start(name, interval_seconds=1)
    first = wait_for(lambda: api.current_version(name), what="first batch")
    done = threading.Event()
    readers = [Reading(Api(system), name) for _ in range(3)]
    threads = [threading.Thread(target=r.run, args=(done,)) for r in readers]
    for thread in threads:
        thread.start()
    for label in itertools.islice(itertools.count(1), 60):  # new content for every batch
        feed.records = catalogue(RECORDS, f"v{label}")
        if (api.current_version(name) or 0) >= first + 6:
            break
        time.sleep(0.3)  # pacing of the upstream's content changes, not a synchronisation
    done.set()
    for thread in threads:
        thread.join(timeout=30)
    api.stop(name)

    published = (api.current_version(name) or 0) - first
    problems = [p for r in readers for p in r.problems]
    assert problems == []
    assert published >= 5
    assert sum(r.whole_reads for r in readers) > 10
    statuses = {code for r in readers for code in r.statuses}
    assert statuses <= {200, 410}
    print(f"\nreaders: {published} batches published in the window, "
          f"{sum(r.whole_reads for r in readers)} whole reads, statuses "
          f"{[r.statuses for r in readers]}")


def test_cursor_of_an_expired_version_is_410(system: System, api: Api, upstream: Upstream,
                                             name: str) -> None:
    upstream.feed(name, catalogue(20, "x"), page_size=10)
    api.define(name, upstream.url(name))
    api.start(name, interval_seconds=1)
    first = wait_for(lambda: api.current_version(name), what="first batch")
    cursor = api.call("GET", f"/streams/{name}/data", params={"limit": 5}).json()
    keys = StreamKeys("ds", name)
    started = time.monotonic()

    wait_for(lambda: not system.redis.exists(keys.records(cursor["version"])), timeout=20,
             what="the records of the first version to expire")
    records_gone = time.monotonic() - started
    gone = api.call("GET", f"/streams/{name}/data", params={"cursor": cursor["next_cursor"]})
    assert gone.status_code == 410 and gone.json()["error"]["code"] == "gone"
    wait_for(lambda: not system.redis.exists(keys.batch(first)), timeout=30,
             what="its metadata to leave the history")
    api.stop(name)
    gone = api.call("GET", f"/streams/{name}/data", params={"cursor": cursor["next_cursor"]})
    assert gone.status_code == 410 and gone.json()["error"]["code"] == "gone"
    print(f"\nexpired cursor: records gone {records_gone:.1f}s after replacement began "
          "(GRACE_SECONDS 3)")


def test_publish_gate_quarantines_then_publish_or_discard(system: System, api: Api,
                                                          upstream: Upstream,
                                                          name: str) -> None:
    upstream.feed(name, catalogue(20, "full"), page_size=10)
    api.define(name, upstream.url(name))  # the default gate: losing more than half

    def batch_now() -> dict[str, Any]:
        before = len(api.batches(name))
        api.stop(name)
        api.start(name, interval_seconds=600)
        return wait_for(lambda: (b := api.batches(name)) and len(b) > before and
                        b[0]["status"] != "running" and b[0], what="a settled batch")

    assert batch_now()["status"] == "complete"
    upstream.feed(name, catalogue(5, "shrunk"), page_size=10)
    shrunk = batch_now()
    assert shrunk["status"] == "quarantined"
    assert shrunk["quarantine_reason"].startswith("drop_ratio")
    assert api.read_all(name)[1] == catalogue(20, "full")
    answer = api.call("POST", f"/streams/{name}/batches/{shrunk['version']}/publish")
    assert answer.status_code == 200, answer.text
    assert api.read_all(name) == (shrunk["version"], catalogue(5, "shrunk"))

    upstream.feed(name, [], page_size=10)
    empty = batch_now()
    assert empty["status"] == "quarantined"
    assert empty["quarantine_reason"].startswith("empty_batch")
    answer = api.call("POST", f"/streams/{name}/batches/{empty['version']}/discard")
    assert answer.status_code == 200 and answer.json()["batch"]["status"] == "discarded"
    again = api.call("POST", f"/streams/{name}/batches/{empty['version']}/publish")
    assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"
    assert api.current_version(name) == shrunk["version"]

    api.define(name, upstream.url(name), publish_gate={"max_drop_ratio": None})  # off
    upstream.feed(name, catalogue(1, "tiny"), page_size=10)
    assert batch_now()["status"] == "complete"
    api.stop(name)
    assert api.read_all(name)[1] == catalogue(1, "tiny")


def test_a_stream_failing_every_tick_keeps_a_bounded_history(system: System, api: Api,
                                                             upstream: Upstream,
                                                             name: str) -> None:
    feed = upstream.feed(name, catalogue(10, "ok"), page_size=10)
    api.define(name, upstream.url(name))
    api.start(name, interval_seconds=1)
    current = wait_for(lambda: api.current_version(name), what="first batch")
    feed.status = 404  # every later batch fails at once (404 is not retried)

    keys = StreamKeys("ds", name)
    wait_for(lambda: int(system.redis.get(keys.seq) or 0) >= current + 8, timeout=60,
             what="eight batches after the first")
    api.stop(name)
    wait_for(lambda: api.status(name)["in_progress"] is None, what="the last batch to end")

    index = [int(v) for v in system.redis.zrevrange(keys.batches, 0, -1)]
    assert {b["status"] for b in api.batches(name)[:-1]} == {"failed"}
    assert len(index) <= 4 + 1 and index[-1] == current  # HISTORY_LENGTH 4, and current
    assert api.read_all(name) == (current, catalogue(10, "ok"))
    print(f"\nfailing every tick: {max(index) - current} batches failed, the history kept "
          f"{len(index)} (HISTORY_LENGTH 4 + the current version)")
