"""The batch lock: one batch in flight per stream, one batch per fetch message."""

from __future__ import annotations

from app.extensions import Store
from app.store.locks import BatchLease


def test_a_fetch_message_starts_at_most_one_batch(store: Store) -> None:
    lease = store.locks.acquire_once("s", "task-1")
    assert isinstance(lease, BatchLease) and lease.version == 1

    assert store.locks.acquire_once("s", "task-1") == "duplicate"
    assert store.locks.acquire_once("s", "task-2") == "batch_in_flight"
    store.locks.release(lease)
    assert store.locks.acquire_once("s", "task-1") == "duplicate"
    again = store.locks.acquire_once("s", "task-2")
    assert isinstance(again, BatchLease) and again.version == 2


def test_a_refused_fetch_takes_no_version(store: Store) -> None:
    first = store.locks.acquire_once("s", "a")
    assert isinstance(first, BatchLease)
    assert store.locks.acquire_once("s", "b") == "batch_in_flight"
    store.locks.release(first)
    second = store.locks.acquire_once("s", "b")
    assert isinstance(second, BatchLease) and second.version == first.version + 1


def test_receipts_are_per_stream(store: Store) -> None:
    assert isinstance(store.locks.acquire_once("a", "t"), BatchLease)
    assert isinstance(store.locks.acquire_once("b", "t"), BatchLease)
