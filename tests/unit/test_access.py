"""Bearer tokens: every state-changing request needs API_TOKEN, reads need READ_TOKEN."""

from __future__ import annotations

from typing import Any

import fakeredis
import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from app.api.access import exposure_problem, is_loopback

API = "api-token-0123456789"
READ = "read-token-0123456789"
DEFINITION = {"source": {"url": "http://127.0.0.1:9/items"}}


def make_app(redis: fakeredis.FakeRedis, **tokens: str) -> Flask:
    return create_app({"TESTING": True, "REDIS_CLIENT": redis, **tokens,
                       "ALLOWED_SOURCE_HOSTS": ["127.0.0.1"], "READY_TIMEOUT_SECONDS": 0.05,
                       "CELERY": {"broker_url": "memory://", "redbeat_key_prefix": "{redbeat}:",
                                  "redbeat_redis_url": "redis://127.0.0.1:1/0",
                                  "include": ["tasks.fetch", "tasks.ingest"]}})


@pytest.fixture
def both(redis: fakeredis.FakeRedis) -> FlaskClient:
    return make_app(redis, API_TOKEN=API, READ_TOKEN=READ).test_client()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def error_code(response: Any) -> str:
    return response.get_json()["error"]["code"]


WRITES = [("PUT", "/streams/s1", DEFINITION), ("DELETE", "/streams/s1", None),
          ("POST", "/streams/s1/start", None), ("POST", "/streams/s1/stop", None),
          ("POST", "/streams/s1/batches/1/publish", None),
          ("POST", "/streams/s1/batches/1/discard", None)]
READS = ["/streams", "/streams/s1", "/streams/s1/data", "/streams/s1/batches", "/metrics",
         "/ui/overview"]


@pytest.mark.parametrize(("method", "path", "body"), WRITES)
def test_write_without_header_is_401(both: FlaskClient, method: str, path: str,
                                     body: Any) -> None:
    response = both.open(path, method=method, json=body)
    assert response.status_code == 401
    assert error_code(response) == "unauthorized"


@pytest.mark.parametrize(("method", "path", "body"), WRITES)
def test_write_with_read_token_is_403(both: FlaskClient, method: str, path: str,
                                      body: Any) -> None:
    response = both.open(path, method=method, json=body, headers=bearer(READ))
    assert response.status_code == 403
    assert error_code(response) == "forbidden"


@pytest.mark.parametrize(("method", "path", "body"), WRITES)
def test_write_with_api_token_passes_auth(both: FlaskClient, method: str, path: str,
                                          body: Any) -> None:
    response = both.open(path, method=method, json=body, headers=bearer(API))
    assert response.status_code not in (401, 403)


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer ", API,
                                    f"Bearer {API} extra", "Token " + API])
def test_malformed_header_is_401(both: FlaskClient, header: str) -> None:
    response = both.get("/streams", headers={"Authorization": header})
    assert response.status_code == 401
    assert error_code(response) == "unauthorized"


@pytest.mark.parametrize("path", READS)
def test_read_needs_a_token(both: FlaskClient, path: str) -> None:
    assert both.get(path).status_code == 401
    assert both.get(path, headers=bearer("wrong-token")).status_code == 403
    assert both.get(path, headers=bearer(READ)).status_code not in (401, 403)
    assert both.get(path, headers=bearer(API)).status_code not in (401, 403)


def test_scheme_is_case_insensitive(both: FlaskClient) -> None:
    assert both.get("/streams", headers={"Authorization": f"bearer {READ}"}).status_code == 200


@pytest.mark.parametrize("path", ["/healthz", "/openapi.json", "/docs", "/"])
def test_probes_docs_and_page_shell_stay_open(both: FlaskClient, path: str) -> None:
    assert both.get(path).status_code == 200


def test_unknown_route_needs_a_token_before_404(both: FlaskClient) -> None:
    assert both.get("/nowhere").status_code == 401
    assert both.get("/nowhere", headers=bearer(READ)).status_code == 404


def test_api_token_alone_leaves_reads_open(redis: fakeredis.FakeRedis) -> None:
    client = make_app(redis, API_TOKEN=API).test_client()
    assert client.get("/streams").status_code == 200
    assert client.put("/streams/s1", json=DEFINITION).status_code == 401
    assert client.put("/streams/s1", json=DEFINITION, headers=bearer(API)).status_code == 201


def test_no_tokens_everything_open(redis: fakeredis.FakeRedis) -> None:
    client = make_app(redis).test_client()
    assert client.put("/streams/s1", json=DEFINITION).status_code == 201
    assert client.get("/streams/s1").status_code == 200


def test_compare_is_constant_time(monkeypatch: pytest.MonkeyPatch, both: FlaskClient) -> None:
    import hmac

    seen: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        seen.append((a, b))
        return real(a, b)

    monkeypatch.setattr("app.api.access.hmac.compare_digest", spy)
    both.get("/streams", headers=bearer(API))
    assert (API.encode(), API.encode()) in seen


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("localhost", True), ("::1", True), ("[::1]", True),
    ("127.0.0.2", True), ("0.0.0.0", False), ("10.0.0.1", False), ("example.org", False),
    ("::", False)])
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_exposed_bind_without_api_token_is_refused() -> None:
    assert exposure_problem(["127.0.0.1"], "", "") is None
    assert exposure_problem(["0.0.0.0"], API, "") is None
    assert "0.0.0.0" in (exposure_problem(["0.0.0.0"], "", "") or "")
    assert exposure_problem(["0.0.0.0"], "", READ) is not None
