"""Fixtures of every test: an app on fakeredis, its test client, CLI runner and seeder, and
the one fake upstream (a real HTTP server whose feeds each test controls)."""

from __future__ import annotations

from collections.abc import Iterator

import fakeredis
import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from app import create_app
from app.extensions import Store
from tests.support.httpserver import make_httpserver  # noqa: F401 (fixture)
from tests.support.seed import Seeder
from tests.support.upstream import Upstream


@pytest.fixture
def redis() -> Iterator[fakeredis.FakeRedis]:
    """Return an empty fakeredis client (Lua enabled), flushed after the test."""
    connection = fakeredis.FakeRedis(decode_responses=True)
    yield connection
    connection.flushall()


@pytest.fixture
def app(redis: fakeredis.FakeRedis) -> Flask:
    """Return an app whose Redis (store, RedBeat) is fakeredis; Celery sends nothing."""
    # No worker answers on the memory broker: /metrics and /readyz need not wait for one.
    return create_app({"TESTING": True, "REDIS_CLIENT": redis, "READY_TIMEOUT_SECONDS": 0.05,
                       "CELERY": {"broker_url": "memory://", "task_always_eager": False,
                                  "redbeat_key_prefix": "{redbeat}:",
                                  "redbeat_redis_url": "redis://127.0.0.1:1/0",
                                  "include": ["tasks.fetch", "tasks.ingest"]}})


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


@pytest.fixture
def store(app: Flask) -> Store:
    """Return the app's store objects."""
    return app.extensions["store"]


@pytest.fixture
def seed(app: Flask) -> Seeder:
    """Return the app's seeder: batches through the Outbox and the ingest tasks."""
    return Seeder(app)


@pytest.fixture(scope="session")
def upstream() -> Iterator[Upstream]:
    """Return the fake upstream; each test feeds its own names."""
    with Upstream() as server:
        yield server
