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


class BoundSocket:
    """What the server's socket says about the port a request reached."""

    def __init__(self, port: int) -> None:
        self.port = port

    def getsockname(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)


@pytest.fixture
def loopback(redis: fakeredis.FakeRedis) -> FlaskClient:
    """A client of an app without tokens, reached on 127.0.0.1:8000."""
    client = make_app(redis).test_client()
    client.environ_base["werkzeug.socket"] = BoundSocket(8000)
    return client


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://127.0.0.1:8001",
                                    "http://localhost:8000.evil.example", "file://"])
def test_cross_origin_writes_are_refused_without_tokens(loopback: FlaskClient,
                                                        origin: str) -> None:
    for method, path, body in WRITES:
        response = loopback.open(path, method=method, json=body,
                                 headers={"Host": "127.0.0.1:8000", "Origin": origin})
        assert response.status_code == 403, (method, path)
        assert response.get_json()["error"]["details"]["reason"] == "foreign_origin"


@pytest.mark.parametrize("host", ["rebound.example:8000", "127.0.0.1:8001", "localhost",
                                  "evil.example", "[::2]:8000", "127.0.0.1:x", ""])
def test_a_foreign_host_is_refused_without_tokens(loopback: FlaskClient, host: str) -> None:
    for path in ("/streams", "/", "/ui/overview"):
        response = loopback.get(path, headers={"Host": host})
        assert response.status_code == 403, (path, host)
        assert response.get_json()["error"]["details"]["reason"] == "foreign_host"
    assert loopback.put("/streams/s1", json=DEFINITION, headers={"Host": host}
                        ).status_code == 403
    assert loopback.get("/healthz", headers={"Host": host}).status_code == 200


@pytest.mark.parametrize("host", ["127.0.0.1:8000", "localhost:8000", "[::1]:8000",
                                  "LOCALHOST:8000", "127.0.0.2:8000"])
def test_own_origin_and_no_origin_may_write(loopback: FlaskClient, host: str) -> None:
    assert loopback.put("/streams/s1", json=DEFINITION, headers={"Host": host}
                        ).status_code in (200, 201)
    for origin in (f"http://{host}", f"https://{host}"):
        response = loopback.put("/streams/s1", json=DEFINITION,
                                headers={"Host": host, "Origin": origin})
        assert response.status_code == 200, origin


def test_trusted_origins_are_served(redis: fakeredis.FakeRedis) -> None:
    app = make_app(redis, TRUSTED_ORIGINS=["https://ds.example.com"])
    client = app.test_client()
    headers = {"Host": "ds.example.com", "Origin": "https://ds.example.com"}
    assert client.put("/streams/s1", json=DEFINITION, headers=headers).status_code == 201
    headers["Origin"] = "https://other.example.com"
    assert client.put("/streams/s1", json=DEFINITION, headers=headers).status_code == 403


def test_with_api_token_the_token_decides(both: FlaskClient) -> None:
    headers = {"Host": "rebound.example", "Origin": "http://evil.example", **bearer(API)}
    assert both.put("/streams/s1", json=DEFINITION, headers=headers).status_code == 201
