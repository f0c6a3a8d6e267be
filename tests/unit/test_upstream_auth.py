"""Auth kinds against a local upstream; the OAuth2 token is shared through fakeredis."""

from __future__ import annotations

import base64
import itertools
import json
from collections.abc import Callable, Iterator
from urllib.parse import urlencode

import fakeredis
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from app.exceptions import UpstreamError
from app.store.oauth_tokens import TokenCache
from config.source import Source
from tasks.upstream import Pager
from tests.support.httpserver import ids, pager_for

ENV = {"DS_SECRET_TOKEN": "tok-123", "DS_SECRET_KEY": "key-456", "DS_SECRET_PASS": "pw",
       "DS_SECRET_CLIENT": "client-secret"}


def guarded(check: Callable[[Request], bool]) -> Callable[[Request], Response]:
    def handler(request: Request) -> Response:
        if not check(request):
            return Response("{}", status=401, content_type="application/json")
        return Response(json.dumps({"data": [{"id": 1}]}), content_type="application/json")
    return handler


@pytest.mark.parametrize(("auth", "check"), [
    ({"type": "bearer", "token_env": "DS_SECRET_TOKEN"},
     lambda r: r.headers.get("Authorization") == "Bearer tok-123"),
    ({"type": "api_key", "name": "X-Api-Key", "value_env": "DS_SECRET_KEY"},
     lambda r: r.headers.get("X-Api-Key") == "key-456"),
    ({"type": "api_key", "name": "api_key", "in": "query", "value_env": "DS_SECRET_KEY"},
     lambda r: r.args.get("api_key") == "key-456"),
    ({"type": "basic", "username": "ann", "password_env": "DS_SECRET_PASS"},
     lambda r: r.headers.get("Authorization") == "Basic " + base64.b64encode(b"ann:pw").decode()),
])
def test_static_auth_kinds(httpserver: HTTPServer, auth: dict,
                           check: Callable[[Request], bool]) -> None:
    httpserver.expect_request("/x").respond_with_handler(guarded(check))
    pager, _ = pager_for(httpserver, "/x", auth=auth, pager={"environ": ENV})
    pages = list(pager)
    assert [r["id"] for r in pages[0].records] == [1]
    assert "key-456" not in pages[0].url


def test_missing_env_var_fails_with_auth(httpserver: HTTPServer) -> None:
    pager, _ = pager_for(httpserver, "/x", auth={"type": "bearer", "token_env": "DS_SECRET_NOPE"},
                         pager={"environ": {}})
    with pytest.raises(UpstreamError) as caught:
        ids(pager)
    assert caught.value.kind == "auth" and "NOPE" in caught.value.message
    assert len(httpserver.log) == 0


def test_wrong_credentials_fail_with_auth_401(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/x").respond_with_data("", status=401)
    pager, _ = pager_for(httpserver, "/x", auth={"type": "bearer", "token_env": "DS_SECRET_TOKEN"},
                         pager={"environ": ENV})
    with pytest.raises(UpstreamError) as caught:
        ids(pager)
    assert (caught.value.kind, caught.value.status, caught.value.attempts) == ("auth", 401, 1)


class OAuthUpstream:
    """A token endpoint and an API that accepts only the newest token for `uses` pages."""

    def __init__(self, server: HTTPServer, uses: int = 100) -> None:
        self.server = server
        self.counter = itertools.count(1)
        self.valid: str | None = None
        self.uses = uses
        self.grants: list[dict] = []
        server.expect_request("/token", method="POST").respond_with_handler(self.token)
        server.expect_request("/api").respond_with_handler(self.api)

    def token(self, request: Request) -> Response:
        assert request.authorization and request.authorization.password == "client-secret"
        self.grants.append(dict(request.form))
        self.valid = f"t{next(self.counter)}"
        self.left = self.uses
        return Response(json.dumps({"access_token": self.valid, "expires_in": 3600}),
                        content_type="application/json")

    def api(self, request: Request) -> Response:
        page = int(request.args.get("page", 1))
        if request.headers.get("Authorization") != f"Bearer {self.valid}" or self.left <= 0:
            return Response("{}", status=401, content_type="application/json")
        self.left -= 1
        items = [{"id": page * 10 + n} for n in range(2)] if page <= 3 else []
        return Response(json.dumps({"items": items}), content_type="application/json")


def oauth_source(server: HTTPServer) -> dict:
    return {"records_path": "items", "pagination": {"type": "page_number"},
            "auth": {"type": "oauth2_client_credentials", "token_url": server.url_for("/token"),
                     "client_id": "app", "client_secret_env": "DS_SECRET_CLIENT",
                     "scopes": ["read", "write"]}}


def test_oauth2_token_is_cached_in_redis_encrypted_and_shared(httpserver: HTTPServer) -> None:
    api = OAuthUpstream(httpserver)
    redis = fakeredis.FakeRedis(decode_responses=True)
    options = {"environ": ENV, "tokens": TokenCache(redis, "ds"), "stream": "spotify"}
    for _ in range(2):
        pager, _ = pager_for(httpserver, "/api", pager=options, **oauth_source(httpserver))
        assert ids(pager) == [10, 11, 20, 21, 30, 31]
    assert len(api.grants) == 1
    assert api.grants[0] == {"grant_type": "client_credentials", "scope": "read write"}
    stored = redis.get("ds:{spotify}:oauth")
    # Ciphertext is base64, so it may contain "t1" by chance; never quotes or the raw value.
    assert stored and stored != "t1" and '"t1"' not in stored
    assert "client-secret" not in stored
    assert 3500 < redis.ttl("ds:{spotify}:oauth") <= 3570


def test_oauth2_token_expiring_mid_batch_is_refreshed_once(httpserver: HTTPServer) -> None:
    api = OAuthUpstream(httpserver, uses=2)
    redis = fakeredis.FakeRedis(decode_responses=True)
    options = {"environ": ENV, "tokens": TokenCache(redis, "ds"), "stream": "s"}
    pager, _ = pager_for(httpserver, "/api", pager=options, **oauth_source(httpserver))
    assert ids(pager) == [10, 11, 20, 21, 30, 31]
    assert len(api.grants) == 2
    assert pager.stop_reason == "empty_page"


def test_oauth2_rejected_after_refresh_fails_with_auth(httpserver: HTTPServer) -> None:
    api = OAuthUpstream(httpserver, uses=0)
    pager, _ = pager_for(httpserver, "/api", pager={"environ": ENV}, **oauth_source(httpserver))
    with pytest.raises(UpstreamError) as caught:
        ids(pager)
    assert (caught.value.kind, caught.value.status, caught.value.page) == ("auth", 401, 1)
    assert len(api.grants) == 2


def test_oauth2_token_endpoint_refusal_is_auth(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/token").respond_with_json({"error": "invalid_client"},
                                                          status=400)
    pager, _ = pager_for(httpserver, "/api", pager={"environ": ENV}, **oauth_source(httpserver))
    with pytest.raises(UpstreamError) as caught:
        ids(pager)
    assert (caught.value.kind, caught.value.status) == ("auth", 400)
    assert "client-secret" not in json.dumps(caught.value.to_dict())


@pytest.mark.parametrize("variable", ["REDIS_URL", "API_TOKEN", "HOME"])
def test_the_worker_reads_only_secret_variables(httpserver: HTTPServer, variable: str) -> None:
    # A definition that skipped the PUT check (stored before it, or loaded some other way).
    source = Source.model_validate({"url": httpserver.url_for("/x"),
                                    "auth": {"type": "bearer", "token_env": variable}})
    pager = Pager(source, allowed_hosts=[f"127.0.0.1:{httpserver.port}"],
                  environ={variable: "server-own-value", **ENV})
    with pytest.raises(UpstreamError) as caught:
        ids(pager)
    assert caught.value.kind == "auth" and "SECRET_ENV_PREFIX" in caught.value.message
    assert httpserver.log == []
    other = Pager(source, allowed_hosts=[f"127.0.0.1:{httpserver.port}"], secret_prefix="",
                  environ={variable: "x"})
    assert other.auth.secret_params == []  # the prefix is the worker's setting, passed in


@pytest.fixture(scope="module")
def second_server() -> Iterator[HTTPServer]:
    server = HTTPServer(host="127.0.0.1", port=0)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def elsewhere(second_server: HTTPServer) -> Iterator[HTTPServer]:
    """A second upstream on another port: another origin (cleared for each test)."""
    second_server.clear()
    yield second_server
    second_server.clear()


SECRET_VALUES = ("tok-123", "key-456", "tenant-9")


def echo(request: Request, **more: str) -> str:
    """Return the query string of `request` with `more`, as an upstream echoing it would."""
    return "?" + urlencode({**request.args.to_dict(), **more})


def carried(server: HTTPServer) -> list[str]:
    """Return every secret value that reached `server`, in any header or the query."""
    seen = [f"{request.url} {dict(request.headers)}" for request, _ in server.log]
    return [value for value in SECRET_VALUES for text in seen if value in text]


def test_a_next_link_to_another_origin_gets_no_credentials(
        httpserver: HTTPServer, elsewhere: HTTPServer) -> None:
    # Upstreams often echo the query they got into their next links.
    httpserver.expect_request("/a").respond_with_handler(lambda request: Response(json.dumps(
        {"data": [{"id": 1}], "next": elsewhere.url_for("/b") + echo(request, p="2")}),
        content_type="application/json"))
    elsewhere.expect_request("/b").respond_with_json(
        {"data": [{"id": 2}], "next": httpserver.url_for("/c")})
    httpserver.expect_request("/c").respond_with_json({"data": [{"id": 3}], "next": None})
    for auth in ({"type": "bearer", "token_env": "DS_SECRET_TOKEN"},
                 {"type": "api_key", "in": "query", "name": "k", "value_env": "DS_SECRET_KEY"}):
        pager, _ = pager_for(httpserver, "/a", auth=auth, headers={"X-Tenant": "tenant-9"},
                             pagination={"type": "next_url"},
                             pager={"environ": ENV, "allowed_hosts": ["127.0.0.1"]})
        assert ids(pager) == [1, 2, 3]
    assert carried(elsewhere) == [] and len(elsewhere.log) == 2
    assert elsewhere.log[1][0].args.to_dict() == {"p": "2"}  # the echoed key was taken out
    assert [request.headers.get("X-Tenant") for request, _ in httpserver.log] == [
        "tenant-9"] * 4
    assert httpserver.log[0][0].headers["Authorization"] == "Bearer tok-123"


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_to_another_origin_gets_no_credentials(
        httpserver: HTTPServer, elsewhere: HTTPServer, status: int) -> None:
    httpserver.expect_request("/moved").respond_with_handler(lambda request: Response(
        "", status=status, headers={"Location": elsewhere.url_for("/new") + echo(request)}))
    elsewhere.expect_request("/new").respond_with_json({"data": [{"id": 1}]})
    for auth in ({"type": "basic", "username": "ann", "password_env": "DS_SECRET_PASS"},
                 {"type": "api_key", "name": "X-Key", "value_env": "DS_SECRET_KEY"},
                 {"type": "api_key", "in": "query", "name": "k", "value_env": "DS_SECRET_KEY"}):
        pager, _ = pager_for(httpserver, "/moved", auth=auth,
                             headers={"X-Tenant": "tenant-9", "Accept": "application/json"},
                             pager={"environ": ENV, "allowed_hosts": ["127.0.0.1"]})
        assert ids(pager) == [1]
    assert carried(elsewhere) == [] and "ann" not in str(elsewhere.log)
    assert {request.headers.get("Accept") for request, _ in elsewhere.log} == {
        "application/json"}


def test_a_token_endpoint_redirect_fails_the_batch(httpserver: HTTPServer,
                                                   elsewhere: HTTPServer) -> None:
    httpserver.expect_request("/token").respond_with_data("", status=307, headers={
        "Location": elsewhere.url_for("/token")})
    pager, _ = pager_for(httpserver, "/api", pager={"environ": ENV},
                         **oauth_source(httpserver))
    with pytest.raises(UpstreamError) as caught:
        ids(pager)
    assert (caught.value.kind, caught.value.status) == ("auth", 307)
    assert elsewhere.log == []


def test_cookies_are_neither_kept_nor_sent(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/one").respond_with_json(
        {"data": [{"id": 1}], "next": "/two"}, headers={"Set-Cookie": "session=s-1; Path=/"})
    httpserver.expect_request("/two").respond_with_json({"data": [{"id": 2}]})
    pager, _ = pager_for(httpserver, "/one", pagination={"type": "next_url"})
    assert ids(pager) == [1, 2]
    assert "Cookie" not in httpserver.log[1][0].headers
