"""Records and their keys on real processes: one record per key, the key required, and a
change feed that tracks the upstream rather than the batch."""

from __future__ import annotations

from typing import Any

from tests.integration.conftest import Api
from tests.support.upstream import Upstream
from tests.support.waiting import wait_for


def settled(api: Api, name: str, after: int = 0) -> dict[str, Any]:
    """Wait for the newest batch after version `after` to end; return it."""
    return wait_for(lambda: (b := api.batches(name)) and b[0]["version"] > after and
                    b[0]["status"] != "running" and b[0], timeout=30,
                    what=f"a batch after {after} to end")


def test_a_key_absent_from_the_records_fails_the_batch_naming_it(api: Api, upstream: Upstream,
                                                                 name: str) -> None:
    upstream.feed(name, [{"id": i, "name": f"n{i}"} for i in range(230)], page_size=50)
    api.define(name, upstream.url(name), key="uuid")

    api.start(name, interval_seconds=3600)
    failed = settled(api, name)
    api.stop(name)

    assert failed["status"] == "failed"
    assert failed["error"] == {
        "kind": "missing_key", "key": "uuid", "records": 230,
        "message": "230 of 230 records have no value at the stream's key 'uuid' (the first "
                   "has fields id, name); fix the definition's `key` or its middleware"}
    assert api.current_version(name) is None
    assert api.status(name)["in_progress"] is None


def test_same_key_records_keep_the_last_and_are_counted(api: Api, upstream: Upstream,
                                                        name: str) -> None:
    records = [{"id": i, "v": "first"} for i in range(10)]
    records += [{"id": 3, "v": "second"}, {"id": 4, "v": "first"}, {"id": 3, "v": "third"}]
    upstream.feed(name, records, page_size=5)

    api.define(name, upstream.url(name))
    api.start(name, interval_seconds=3600)
    batch = settled(api, name)
    api.stop(name)

    assert batch["status"] == "complete"
    assert (batch["records_received"], batch["records"], batch["duplicates_dropped"]) == (
        13, 10, 3)
    served = {r["id"]: r["v"] for r in api.read_all(name)[1]}
    assert served == {**{i: "first" for i in range(10)}, 3: "third"}


def test_fields_from_the_batch_context_do_not_make_records_updated(
        api: Api, upstream: Upstream, name: str) -> None:
    feed = upstream.feed(name, [{"id": i, "price": i} for i in range(1003)], page_size=100)
    api.define(name, upstream.url(name), middleware=[
        {"type": "add_fields", "context": ["_fetched_at", "_batch_version"]}])
    api.start(name, interval_seconds=3600)
    first = settled(api, name)["version"]
    changed = set(range(0, 1000, 100))
    feed.records = [{"id": i, "price": i + 1000 if i in changed else i} for i in range(1003)]

    api.stop(name)
    api.start(name, interval_seconds=3600)
    second = settled(api, name, first)
    api.stop(name)

    assert second["status"] == "complete"
    assert second["middleware"]["context_fields"] == ["_batch_version", "_fetched_at"]
    assert second["changes"] == {"from": first, "added": 0, "updated": 10, "removed": 0}
    body = api.call("GET", f"/streams/{name}/changes",
                    params={"since": first, "limit": 1000}).json()
    assert sorted(r["id"] for r in body["updated"]) == sorted(changed)
    assert {r["_batch_version"] for r in body["updated"]} == {second["version"]}
    assert (body["added"], body["removed"]) == ([], [])
