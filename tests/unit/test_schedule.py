"""Schedule entries on fakeredis: the next run time a stream reports."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import Flask

from app.schedule import Schedules


def test_next_run_is_one_interval_after_the_last_run(app: Flask) -> None:
    schedules = Schedules(app.extensions["celery"])
    schedules.save("orders", 30)
    entry = schedules.load("orders")
    assert entry is not None
    last_run = datetime.now(UTC) - timedelta(seconds=10)
    entry.reschedule(last_run)

    next_run = datetime.fromisoformat(schedules.describe("orders")["next_run_at"])

    expected = last_run + timedelta(seconds=30)
    assert abs((next_run - expected).total_seconds()) <= 1, (next_run, expected)
