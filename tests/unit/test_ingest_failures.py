"""The ingest consumer ends a batch at once, with a reason, and never publishes a part."""

from __future__ import annotations

from typing import Any

import fakeredis
import pytest
from flask import Flask

from app.exceptions import BadRecord
from app.extensions import Store
from app.records import LAST, to_entries
from app.store.keys import StreamKeys
from config.streams import StreamDefinition
from tasks import fetch, ingest
from tasks.protocol import Outbox, pack
from tests.support.seed import Seeder
from tests.support.upstream import Upstream

KEYS = StreamKeys("ds", "s")


@pytest.fixture
def s(store: Store) -> Store:
    store.definitions.put("s", StreamDefinition.model_validate(
        {"source": {"url": "http://127.0.0.1:1/x"}, "key": "id"}))
    return store


@pytest.mark.parametrize("value", ["NaN", float("nan"), "Infinity", float("-inf"), 10 ** 400,
                                   "soon", {"at": 1}, True])
def test_an_order_by_value_that_is_no_finite_number_or_time_is_a_bad_record(
        value: Any) -> None:
    records = [{"t": 1}, {"t": "2024-01-01T00:00:00Z"}, {"t": value}]

    with pytest.raises(BadRecord) as bad:
        to_entries(records, 7, "t")

    assert bad.value.to_dict()["kind"] == "bad_record"
    assert (bad.value.page, bad.value.position) == (7, 3)
    assert "page 7, record 3: order_by 't'" in bad.value.message


def test_a_missing_order_by_value_sorts_last() -> None:
    assert [score for score, _ in to_entries([{"t": "3"}, {}, {"t": None}], 1, "t")] == [
        3.0, LAST, LAST]


def test_a_page_with_a_score_that_is_no_number_fails_its_batch_writing_nothing(
        s: Store, seed: Seeder, redis: fakeredis.FakeRedis) -> None:
    batch = seed.batch("s")
    batch.page([{"id": 1}])

    batch.outbox.page(2, [(1.0, '{"id":2}'), (float("nan"), '{"id":3}')])

    failed = s.reader.batch("s", batch.version)
    assert failed["status"] == "failed"
    assert failed["error"]["kind"] == "bad_record"
    assert (failed["error"]["page"], failed["error"]["position"]) == (2, 2)
    assert (failed["pages_received"], failed["records_received"]) == (1, 1)
    # Then the failed batch freed its staging at once, as every unpublished batch does.
    assert not redis.exists(KEYS.pages(batch.version), KEYS.records(batch.version))
    assert s.locks.holder("s") is None


def test_the_fetch_fails_a_batch_with_a_bad_record_before_sending_its_page(
        app: Flask, s: Store, seed: Seeder, upstream: Upstream,
        monkeypatch: pytest.MonkeyPatch) -> None:
    upstream.feed("bad-order", [{"id": 1, "t": 1}, {"id": 2, "t": 2}, {"id": 3, "t": "NaN"}],
                  page_size=2)
    s.definitions.put("s", StreamDefinition.model_validate(
        {"source": {"url": upstream.url("bad-order"), "records_path": "data",
                    "pagination": {"type": "next_url", "next_url_path": "next"}},
         "key": "id", "order_by": "t"}))
    app.config["ALLOWED_SOURCE_HOSTS"] = ["127.0.0.1"]
    monkeypatch.setattr(fetch, "Outbox", lambda _celery, lease: Outbox(seed.celery, lease))

    with pytest.raises(fetch.BatchFailed, match="bad_record"):  # a failed task in Flower
        fetch.fetch_stream.apply(args=["s"]).get()

    failed = s.reader.batches("s")[0]
    assert (failed["status"], failed["error"]["kind"]) == ("failed", "bad_record")
    assert (failed["error"]["page"], failed["error"]["position"]) == (2, 1)
    assert [name.rsplit(".", 1)[-1] for name, _ in seed.sent] == ["begin", "page", "fail"]


def test_an_unexpected_error_fails_the_batch_instead_of_leaving_it(
        s: Store, seed: Seeder, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any) -> str:
        raise RuntimeError("a bug")

    monkeypatch.setattr(ingest.publish, "settle", broken)
    batch = seed.batch("s")
    batch.page([{"id": 1}])

    with pytest.raises(RuntimeError):
        batch.complete()

    failed = s.reader.batch("s", batch.version)
    assert failed["status"] == "failed"
    assert failed["error"] == {"kind": "internal",
                               "message": "ingest complete raised RuntimeError"}
    assert s.locks.holder("s") is None


def test_a_page_after_the_staging_expired_fails_the_batch(
        s: Store, seed: Seeder, redis: fakeredis.FakeRedis) -> None:
    seed.publish("s", [{"id": 0}])
    batch = seed.batch("s")
    batch.page([{"id": 1}, {"id": 2}])
    batch.complete(pages=2, records=3)
    redis.delete(KEYS.records(batch.version), KEYS.pages(batch.version))  # as they expire

    batch.page([{"id": 3}], number=2)

    failed = s.reader.batch("s", batch.version)
    assert failed["status"] == "failed" and failed["error"]["kind"] == "staging_expired"
    assert s.reader.current_version("s") == 1
    assert s.locks.holder("s") is None


def test_the_publish_step_checks_what_is_stored_not_what_was_counted(
        s: Store, seed: Seeder, redis: fakeredis.FakeRedis) -> None:
    batch = seed.batch("s")
    batch.page([{"id": 1}, {"id": 2}])
    redis.zrem(KEYS.records(batch.version), '{"id":1}')  # records lost under the counts

    batch.complete()

    failed = s.reader.batch("s", batch.version)
    assert failed["status"] == "failed" and failed["error"]["kind"] == "staging_expired"
    assert s.reader.current_version("s") is None


def test_a_consumer_that_died_settling_is_replaced_by_the_next_delivery(
        s: Store, seed: Seeder) -> None:
    for redeliver in ("page", "complete"):
        batch = seed.batch("s")
        records = [{"id": 1, "by": redeliver}]
        # Stored and totals recorded, then the consumer died before it settled the batch.
        s.writer.store_packed(batch.lease, 1, **_packed(records))
        s.writer.complete(batch.lease, 1, 1)
        assert seed.status("s", batch.version) == "running"

        if redeliver == "page":
            batch.page(records, number=1)
        else:
            batch.complete(pages=1, records=1)

        assert seed.status("s", batch.version) == "complete"
        assert s.reader.current_version("s") == batch.version


def _packed(records: list[Any]) -> dict[str, Any]:
    entries = pack(to_entries(records, 1, None))
    return {"members": entries["members"], "scores": entries["scores"],
            "count": entries["count"]}
