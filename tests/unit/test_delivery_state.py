"""Delivery state on fakeredis: backoff, what the sweep finds due, the publish hook."""

from __future__ import annotations

import time
from typing import Any

from flask import Flask

from app import delivery
from app.extensions import Store
from app.store.delivery_state import backoff_seconds
from config import names
from config.destinations import DestinationDefinition
from config.settings import load_settings
from config.streams import StreamDefinition
from tests.support.seed import Seeder

STREAM: dict[str, Any] = {"source": {"url": "http://127.0.0.1:9/x", "records_path": "data"},
                          "key": "id"}


def define(store: Store, name: str, *targets: str) -> None:
    for target in targets:
        store.destinations.put(target, DestinationDefinition(type="duckdb", path=f"{target}.db"))
    store.definitions.put(name, StreamDefinition.model_validate(
        {**STREAM, "deliver_to": list(targets)}))


def test_backoff_doubles_up_to_the_cap() -> None:
    assert [backoff_seconds(n, 5, 300) for n in (1, 2, 3, 4, 7, 8, 500)] == \
        [5, 10, 20, 40, 300, 300, 300]


def test_failures_back_off_and_a_success_clears_them(store: Store) -> None:
    states = store.delivery_states
    first = states.failed("s", "d", message="down", at="t1", base=5, cap=300)
    second = states.failed("s", "d", message="still down", at="t2", base=5, cap=300)
    state = states.get("s", "d")

    assert (first, second) == (5, 10)
    assert state.failures == 2 and state.error == "still down"
    assert not state.due(int(time.time() * 1000)) and state.due(state.retry_at_ms)
    states.succeeded("s", "d", version=4, published_at="p", delivered_at="t3", mode="merge",
                     rows=7)
    state = states.get("s", "d")
    assert state.failures == 0 and state.retry_at_ms == 0 and state.delivered_version == 4
    assert state.error == "still down"  # the last error stays visible, with its time


def test_sweep_finds_what_is_behind_due_and_free(store: Store, seed: Seeder) -> None:
    define(store, "a", "lake")
    define(store, "b", "lake", "pg")
    define(store, "never", "lake")
    for name in ("a", "b"):
        seed.publish(name, [{"id": 1}])
    states = store.delivery_states
    states.succeeded("a", "lake", version=1, published_at="p", delivered_at="t", mode="replace",
                     rows=1)
    states.failed("b", "pg", message="down", at="t", base=60, cap=300)

    assert sorted(delivery.due(store)) == [("b", "lake")]
    lock = states.lock("b", "lake", single_writer=True, timeout=30)
    assert lock.acquire(blocking=False)
    assert list(delivery.due(store)) == []  # duckdb: one writer for the whole destination
    lock.release()
    states.ask_reload("a", "lake")
    assert sorted(delivery.due(store)) == [("a", "lake"), ("b", "lake")]


def test_publish_sends_one_delivery_per_destination(app: Flask, store: Store,
                                                    seed: Seeder, monkeypatch: Any) -> None:
    define(store, "orders", "lake", "pg")
    sent: list[tuple[str, list[Any], str]] = []
    celery_app = app.extensions["celery"]
    monkeypatch.setattr(celery_app, "send_task", lambda name, args, queue, expires, retry:
                        sent.append((name, args, queue)))

    seed.publish("orders", [{"id": 1}])

    assert sent == [(names.DELIVER_STREAM, ["orders", "lake"], names.DELIVER_QUEUE),
                    (names.DELIVER_STREAM, ["orders", "pg"], names.DELIVER_QUEUE)]


def test_settings_schedule_the_sweep_and_bound_the_delivery() -> None:
    celery = load_settings({"DELIVERY_SWEEP_SECONDS": "7"})["CELERY"]

    assert celery["beat_schedule"]["ds-deliver-sweep"]["schedule"] == 7
    assert celery["task_annotations"][names.DELIVER_STREAM]["time_limit"] > \
        celery["task_annotations"][names.DELIVER_STREAM]["soft_time_limit"]
    assert celery["task_routes"]["ds.deliver.*"] == {"queue": "deliver"}
