"""Input limits: body size, media type, interval bounds from config, page size, fields."""

from __future__ import annotations

import fakeredis
import pytest
from flask.testing import FlaskClient

from app.ops.gunicorn import _bind_hosts
from tests.unit.test_access import make_app

DEFINITION = {"source": {"url": "http://127.0.0.1:9/items"}}


@pytest.fixture
def limited(redis: fakeredis.FakeRedis) -> FlaskClient:
    """An app whose configured minimum interval is 60 s."""
    app = make_app(redis)
    app.config["MIN_INTERVAL_SECONDS"] = 60
    return app.test_client()


def test_body_over_one_mib_is_413_json(client: FlaskClient) -> None:
    big = b'{"source": {"url": "http://127.0.0.1:9/"}, "description": "' + b"x" * (1 << 20)
    response = client.put("/streams/s1", data=big + b'"}',
                          headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "payload_too_large"


def test_body_just_under_the_limit_is_not_413(client: FlaskClient) -> None:
    body = b'{"source": {"url": "http://127.0.0.1:9/"}, "description": "' + b"x" * 1000 + b'"}'
    assert client.put("/streams/s1", data=body,
                      headers={"Content-Type": "application/json"}).status_code != 413


def test_non_json_body_is_415(client: FlaskClient) -> None:
    response = client.put("/streams/s1", data="url=http://x", content_type="text/plain")
    assert response.status_code == 415
    assert response.get_json()["error"]["code"] == "unsupported_media_type"


def test_unknown_field_is_422(client: FlaskClient) -> None:
    response = client.put("/streams/s1", json={**DEFINITION, "surprise": 1})
    assert response.status_code == 422
    assert response.get_json()["error"]["details"]["errors"][0]["field"] == "surprise"


@pytest.mark.parametrize("name", ["Upper", "-dash", "a" * 65, "dot.name"])
def test_bad_stream_names_are_refused(client: FlaskClient, name: str) -> None:
    assert client.put(f"/streams/{name}", json=DEFINITION).status_code in (404, 422)


def test_interval_below_configured_minimum_is_422_at_put(limited: FlaskClient) -> None:
    response = limited.put("/streams/s1", json={**DEFINITION, "interval_seconds": 30})
    assert response.status_code == 422
    body = response.get_json()["error"]
    assert body["details"]["min"] == 60
    assert body["details"]["errors"][0]["field"] == "interval_seconds"
    assert limited.put("/streams/s1", json={**DEFINITION, "interval_seconds": 60}
                       ).status_code == 201


def test_interval_above_a_week_is_422(client: FlaskClient) -> None:
    response = client.put("/streams/s1", json={**DEFINITION, "interval_seconds": 7 * 86400 + 1})
    assert response.status_code == 422


def test_interval_below_configured_minimum_is_422_at_start(limited: FlaskClient) -> None:
    assert limited.put("/streams/s1", json={**DEFINITION, "interval_seconds": 60}
                       ).status_code == 201
    response = limited.post("/streams/s1/start", json={"interval_seconds": 5})
    assert response.status_code == 422
    assert response.get_json()["error"]["details"]["min"] == 60


def test_start_refuses_a_stored_interval_below_a_raised_minimum(
        redis: fakeredis.FakeRedis) -> None:
    app = make_app(redis)
    client = app.test_client()
    assert client.put("/streams/s1", json={**DEFINITION, "interval_seconds": 10}
                      ).status_code == 201
    app.config["MIN_INTERVAL_SECONDS"] = 60
    assert client.post("/streams/s1/start").status_code == 422


@pytest.mark.parametrize(("limit", "status"), [("0", 400), ("10001", 400), ("abc", 400)])
def test_limit_is_capped(redis: fakeredis.FakeRedis, limit: str, status: int) -> None:
    client = make_app(redis).test_client()
    assert client.put("/streams/s1", json=DEFINITION).status_code == 201
    response = client.get(f"/streams/s1/data?limit={limit}")
    assert response.status_code == status
    assert "limit" in response.get_json()["error"]["message"]


@pytest.mark.parametrize(("binds", "hosts"), [
    (["127.0.0.1:8000"], ["127.0.0.1"]), (["[::1]:8000"], ["[::1]"]),
    (["0.0.0.0:80", "unix:/tmp/s"], ["0.0.0.0"])])
def test_gunicorn_bind_hosts(binds: list[str], hosts: list[str]) -> None:
    assert _bind_hosts(binds) == hosts
