"""A poison ingest message is taken at most MAX_DELIVERIES times, then its batch fails."""

from __future__ import annotations

import functools

import pytest

from app.extensions import Store
from app.store.deliveries import MAX_DELIVERIES
from app.store.keys import StreamKeys
from config.streams import StreamDefinition
from tasks import protocol
from tests.support.seed import Seeder


def test_a_message_redelivered_too_often_fails_its_batch(store: Store, seed: Seeder) -> None:
    store.definitions.put("s", StreamDefinition.model_validate(
        {"source": {"url": "http://127.0.0.1:1/x"}}))
    batch = seed.batch("s")
    for _ in range(MAX_DELIVERIES):  # a redelivered page is stored once, then ignored
        batch.page([{"id": 1}], number=1)
    assert seed.status("s", batch.version) == "running"

    batch.page([{"id": 1}], number=1)

    failed = store.reader.batch("s", batch.version)
    assert failed["status"] == "failed" and failed["error"]["kind"] == "poison"
    assert store.locks.holder("s") is None
    keys = StreamKeys("ds", "s")  # the ended batch's staging and delivery counts are gone
    assert not store.connection.exists(keys.records(batch.version),
                                       keys.deliveries(batch.version))


def test_a_page_sent_in_more_parts_than_deliveries_allowed_is_stored_whole(
        store: Store, seed: Seeder, monkeypatch: pytest.MonkeyPatch) -> None:
    store.definitions.put("s", StreamDefinition.model_validate(
        {"source": {"url": "http://127.0.0.1:1/x"}, "key": "id"}))
    parts = MAX_DELIVERIES + 3
    monkeypatch.setattr(protocol, "split", functools.partial(
        protocol.split, max_records=1))  # one record a part: a page of `parts` parts

    batch = seed.send("s", [{"id": i} for i in range(parts)])

    published = store.reader.batch("s", batch.version)
    assert published["status"] == "complete", published.get("error")
    assert published["records"] == parts
