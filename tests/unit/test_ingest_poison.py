"""A poison ingest message is taken at most MAX_DELIVERIES times, then its batch fails."""

from __future__ import annotations

from app.extensions import Store
from app.store.deliveries import MAX_DELIVERIES
from app.store.keys import StreamKeys
from config.streams import StreamDefinition
from tasks import ingest


def test_a_message_redelivered_too_often_fails_its_batch(store: Store) -> None:
    store.definitions.put("s", StreamDefinition.model_validate(
        {"source": {"url": "http://127.0.0.1:1/x"}}))
    lease = store.locks.acquire("s")
    assert lease is not None
    ingest.begin("s", lease.version, lease.token)
    entries = [[1.0, '{"id":1}']]
    for _ in range(MAX_DELIVERIES):  # a redelivered page is stored once, then ignored
        ingest.page("s", lease.version, lease.token, 1, entries)
    assert store.reader.batch("s", lease.version)["status"] == "running"

    ingest.page("s", lease.version, lease.token, 1, entries)

    batch = store.reader.batch("s", lease.version)
    assert batch["status"] == "failed" and batch["error"]["kind"] == "poison"
    assert store.locks.holder("s") is None
    assert store.connection.ttl(StreamKeys("ds", "s").deliveries(lease.version)) > 0
