"""Input limits: body size and depth, media type, names, cursors, intervals, page size,
fields, secret variable names and schema references: bad input is a 4xx, never a 500."""

from __future__ import annotations

import base64
import json

import fakeredis
import pytest
from flask.testing import FlaskClient

from app.ops.gunicorn import _bind_hosts
from config.settings import load_settings
from tests.support.seed import Seeder
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


@pytest.mark.parametrize("name", ["Upper", "-dash", "a" * 65, "dot.name", "ok%0A", "ok%0D",
                                  "ok%20", "%C3%A9"])
def test_bad_stream_names_are_a_422_naming_the_rule_at_put(client: FlaskClient,
                                                           name: str) -> None:
    response = client.put(f"/streams/{name}", json=DEFINITION)
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["details"]["errors"][0]["field"] == "name"
    assert "^[a-z0-9][a-z0-9_-]{0,63}$" in error["message"]
    assert client.get(f"/streams/{name}").status_code == 404
    assert client.get("/streams").get_json()["streams"] == []


@pytest.mark.parametrize("body", ["[" * 100_000 + "]" * 100_000,
                                  '{"source": ' + '{"a": ' * 65 + "1" + "}" * 65 + "}",
                                  '{"source": ' + "[" * 2000 + "]" * 2000 + "}"])
def test_deeply_nested_bodies_are_a_400(client: FlaskClient, body: str) -> None:
    for path in ("/streams/s1", "/streams/s1/start"):
        method = client.put if path == "/streams/s1" else client.post
        response = method(path, data=body, content_type="application/json")
        assert response.status_code == 400, path
        assert response.get_json()["error"]["details"] == {"max_depth": 64}


def test_a_body_within_the_depth_limit_is_read(allowed: tuple[FlaskClient, Seeder]) -> None:
    client, _ = allowed
    nested = {"and": [{"or": [{"not": {"field": "a", "op": "eq", "value": 1}}]}]}
    definition = {**DEFINITION, "middleware": [{"type": "filter", "condition": nested}]}
    assert client.put("/streams/s1", json=definition).status_code == 201


@pytest.fixture
def allowed(redis: fakeredis.FakeRedis) -> tuple[FlaskClient, Seeder]:
    """A client of an app that allows 127.0.0.1 upstreams, and its seeder."""
    app = make_app(redis)
    return app.test_client(), Seeder(app)


def cursor(body: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(body).encode()).decode().rstrip("=")


@pytest.mark.parametrize("forged", [
    {"v": 1, "o": 10**30}, {"v": 1, "o": 2**63}, {"v": 2**63, "o": 0}, {"v": 1, "o": 1.5},
    {"v": "1", "o": "0"}, {"v": True, "o": 0}, {"v": 0, "o": 0}, {"v": 1, "o": -1},
    {"v": 1}, [1, 0], {"v": 1, "o": 0, "lo": "x"}, {"v": 1, "o": 0, "lo": 1e400}])
def test_forged_or_oversized_cursors_are_a_400(allowed: tuple[FlaskClient, Seeder],
                                               forged: object) -> None:
    client, seed = allowed
    assert client.put("/streams/s1", json=DEFINITION).status_code == 201
    seed.publish("s1", [{"id": 1}])
    response = client.get(f"/streams/s1/data?cursor={cursor(forged)}")
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["error"]["details"] == {"field": "cursor"}


@pytest.mark.parametrize("forged", [{"f": 0, "t": 10**30, "k": "a"}, {"f": -1, "t": 1, "k": "a"},
                                    {"f": 2, "t": 1, "k": "a"}, {"f": 0, "t": 1, "k": ""}])
def test_forged_change_cursors_are_a_400(allowed: tuple[FlaskClient, Seeder],
                                         forged: object) -> None:
    client, seed = allowed
    assert client.put("/streams/s1", json=DEFINITION).status_code == 201
    seed.publish("s1", [{"id": 1}])
    response = client.get(f"/streams/s1/changes?cursor={cursor(forged)}")
    assert response.status_code == 400, response.get_json()


@pytest.mark.parametrize("variable", ["REDIS_URL", "API_TOKEN", "READ_TOKEN", "HOME"])
def test_env_fields_must_name_secret_variables(allowed: tuple[FlaskClient, Seeder],
                                               variable: str) -> None:
    client, _ = allowed
    for auth in ({"type": "bearer", "token_env": variable},
                 {"type": "basic", "username_env": variable, "password_env": "DS_SECRET_P"},
                 {"type": "oauth2_client_credentials", "token_url": "http://127.0.0.1:9/t",
                  "client_id_env": variable, "client_secret_env": "DS_SECRET_S"}):
        response = client.put("/streams/s1", json={"source": {**DEFINITION["source"],
                                                              "auth": auth}})
        assert response.status_code == 422
        [error] = response.get_json()["error"]["details"]["errors"]
        assert error["field"].endswith("_env") and "DS_SECRET_" in error["message"]
    response = client.put("/streams/s1", json={"source": {
        **DEFINITION["source"], "auth": {"type": "bearer", "token_env": "DS_SECRET_UP"}}})
    assert response.status_code == 201


def test_the_secret_prefix_is_a_setting(redis: fakeredis.FakeRedis) -> None:
    app = make_app(redis)
    app.config["SECRET_ENV_PREFIX"] = "SHOP_"
    client = app.test_client()
    auth = {"type": "bearer", "token_env": "DS_SECRET_UP"}
    assert client.put("/streams/s1", json={"source": {**DEFINITION["source"], "auth": auth}}
                      ).status_code == 422
    auth = {"type": "bearer", "token_env": "SHOP_TOKEN"}
    assert client.put("/streams/s1", json={"source": {**DEFINITION["source"], "auth": auth}}
                      ).status_code == 201
    with pytest.raises(ValueError, match="SECRET_ENV_PREFIX"):
        load_settings({"SECRET_ENV_PREFIX": " "})


@pytest.mark.parametrize("ref", ["http://127.0.0.1:9/s.json", "https://x.example/s#/a",
                                 "file:///etc/passwd", "data:application/json,{}",
                                 "other.json", "//x.example/s", 5])
def test_schema_refs_outside_the_schema_are_a_422(allowed: tuple[FlaskClient, Seeder],
                                                  ref: object) -> None:
    client, _ = allowed
    for schema in ({"properties": {"a": {"$ref": ref}}},
                   {"$defs": {"x": {"items": [{"$dynamicRef": ref}]}}}):
        definition = {**DEFINITION, "middleware": [{"type": "validate", "schema": schema}]}
        response = client.put("/streams/s1", json=definition)
        assert response.status_code == 422, response.get_json()
        assert "$ref" in response.get_json()["error"]["message"]
    local = {"properties": {"a": {"$ref": "#/$defs/n"}}, "$defs": {"n": {"type": "integer"}}}
    definition = {**DEFINITION, "middleware": [{"type": "validate", "schema": local}]}
    assert client.put("/streams/s1", json=definition).status_code == 201


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
