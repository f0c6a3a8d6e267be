"""Fixtures of the fast tests: an app on fakeredis, its test client and CLI runner."""

from __future__ import annotations

from collections.abc import Iterator

import fakeredis
import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from app import create_app
from app.extensions import Store
from tests.support.upstream_server import upstream, upstream_server  # noqa: F401 (fixtures)


@pytest.fixture
def redis() -> Iterator[fakeredis.FakeRedis]:
    """Return an empty fakeredis client (Lua enabled), flushed after the test."""
    connection = fakeredis.FakeRedis(decode_responses=True)
    yield connection
    connection.flushall()


@pytest.fixture
def app(redis: fakeredis.FakeRedis) -> Flask:
    """Return an app whose Redis (store, RedBeat) is fakeredis; Celery sends nothing."""
    return create_app({"TESTING": True, "REDIS_CLIENT": redis,
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
