"""Every error of every status is {"error": {"code", "message", "details"}} JSON, never HTML."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from flask import Flask, abort
from flask.testing import FlaskClient
from redis.backoff import NoBackoff
from redis.retry import Retry
from werkzeug.exceptions import TooManyRequests

from app import create_app, exceptions
from app.extensions import Store
from config.streams import StreamDefinition
from devtools.redis_server import free_port
from tests.support.seed import Seeder

DEFINITION = {"source": {"url": "http://127.0.0.1:1/x"}}


def assert_error_shape(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    assert response.mimetype == "application/json"
    body = response.json
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert isinstance(body["error"]["code"], str) and body["error"]["message"]
    assert isinstance(body["error"]["details"], dict)
    assert "Traceback" not in response.get_data(as_text=True)
    return body["error"]


@pytest.fixture
def defined(store: Store) -> Store:
    store.definitions.put("s", StreamDefinition.model_validate(DEFINITION))
    return store


@pytest.mark.parametrize(("method", "path", "kwargs", "status"), [
    ("GET", "/streams/s/data?limit=0", {}, 400),
    ("GET", "/streams/s/data?cursor=%%%", {}, 400),
    ("GET", "/streams/s/changes", {}, 400),
    ("GET", "/streams/nope/data", {}, 404),
    ("GET", "/streams/NOT%20A%20NAME", {}, 404),
    ("GET", "/no/such/route", {}, 404),
    ("GET", "/streams/s/batches/7", {}, 404),
    ("DELETE", "/streams/s/data", {}, 405),
    ("POST", "/streams/s/batches/7/discard", {}, 404),
    ("PUT", "/streams/big", {"data": b"{" + b" " * (2 * 1024 * 1024) + b"}",
                             "content_type": "application/json"}, 413),
    ("PUT", "/streams/x", {"data": "<a/>", "content_type": "text/xml"}, 415),
    ("PUT", "/streams/x", {"json": {"source": {}}}, 422),
    ("POST", "/streams/s/start", {"json": {"interval_seconds": -1}}, 422),
])
def test_each_error_path_is_json(defined: Store, client: FlaskClient, method: str, path: str,
                                 kwargs: dict[str, Any], status: int) -> None:
    assert_error_shape(client.open(path, method=method, **kwargs), status)


def test_405_keeps_the_allow_header(client: FlaskClient) -> None:
    response = client.delete("/streams")

    assert_error_shape(response, 405)
    assert "GET" in response.headers["Allow"]


def test_409_410_from_the_store(defined: Store, seed: Seeder, client: FlaskClient) -> None:
    failed = seed.batch("s")
    failed.fail("timeout", "x")

    assert_error_shape(client.post(f"/streams/s/batches/{failed.version}/discard"), 409)
    assert_error_shape(client.get("/streams/s/changes?since=0"), 404)


@pytest.mark.parametrize("error", [exceptions.Unauthorized("no token"),
                                   exceptions.Forbidden("not yours"),
                                   exceptions.Conflict("busy")])
def test_api_errors_raised_anywhere_are_json(app: Flask, error: exceptions.ApiError) -> None:
    @app.get("/_raise")
    def _raise() -> None:
        raise error

    assert_error_shape(app.test_client().get("/_raise"), error.status)


@pytest.mark.parametrize(("error", "status", "code"), [
    (exceptions.StreamNotFound("s"), 404, "stream_not_found"),
    (exceptions.NoCompleteBatch("s"), 404, "no_complete_batch"),
    (exceptions.BatchNotFound("s", 3), 404, "batch_not_found"),
    (exceptions.BatchNotReadable("running"), 400, "bad_request"),
    (exceptions.InvalidCursor("bad"), 400, "bad_request"),
    (exceptions.VersionExpired("expired"), 410, "gone"),
    (exceptions.ChangesExpired("expired"), 410, "gone")])
def test_store_errors_map_to_their_status_at_the_api_boundary(
        app: Flask, error: exceptions.StoreError, status: int, code: str) -> None:
    @app.get("/_raise")
    def _raise() -> None:
        raise error

    answer = app.test_client().get("/_raise")
    assert_error_shape(answer, status)
    assert answer.get_json()["error"]["code"] == code


def test_werkzeug_429_and_unexpected_500_are_json(app: Flask) -> None:
    @app.get("/_slow")
    def _slow() -> None:
        raise TooManyRequests(retry_after=7)

    @app.get("/_401")
    def _401() -> None:
        abort(401)

    @app.get("/_boom")
    def _boom() -> None:
        raise RuntimeError("secret detail")

    client = app.test_client()
    response = client.get("/_slow")
    assert assert_error_shape(response, 429)["code"] == "too_many_requests"
    assert response.headers["Retry-After"] == "7"
    assert_error_shape(client.get("/_401"), 401)
    boom = client.get("/_boom")
    assert "secret detail" not in boom.get_data(as_text=True)
    assert_error_shape(boom, 500)


def test_an_unreachable_redis_is_a_503_with_retry_after() -> None:
    port = free_port()  # nothing listens there
    app = create_app({"TESTING": True, "REDIS_CLIENT": redis.Redis(
        port=port, socket_connect_timeout=0.2, decode_responses=True,
        retry=Retry(NoBackoff(), 0))})  # production retries; the test need not wait

    response = app.test_client().get("/streams")

    assert response.status_code == 503
    assert response.json["error"]["code"] == "store_unavailable"
    assert response.headers["Retry-After"] == "5"
    assert str(port) not in response.get_data(as_text=True)
