"""Auth kinds against a local upstream; the OAuth2 token is shared through fakeredis."""

from __future__ import annotations

import base64
import itertools
import json
from collections.abc import Callable

import fakeredis
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from app.exceptions import UpstreamError
from app.store.oauth_tokens import TokenCache
from tests.support.httpserver import ids, pager_for

ENV = {"TOKEN": "tok-123", "KEY": "key-456", "PASS": "pw", "SECRET": "client-secret"}


def guarded(check: Callable[[Request], bool]) -> Callable[[Request], Response]:
    def handler(request: Request) -> Response:
        if not check(request):
            return Response("{}", status=401, content_type="application/json")
        return Response(json.dumps({"data": [{"id": 1}]}), content_type="application/json")
    return handler


@pytest.mark.parametrize(("auth", "check"), [
    ({"type": "bearer", "token_env": "TOKEN"},
     lambda r: r.headers.get("Authorization") == "Bearer tok-123"),
    ({"type": "api_key", "name": "X-Api-Key", "value_env": "KEY"},
     lambda r: r.headers.get("X-Api-Key") == "key-456"),
    ({"type": "api_key", "name": "api_key", "in": "query", "value_env": "KEY"},
     lambda r: r.args.get("api_key") == "key-456"),
    ({"type": "basic", "username": "ann", "password_env": "PASS"},
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
    pager, _ = pager_for(httpserver, "/x", auth={"type": "bearer", "token_env": "NOPE"},
                         pager={"environ": {}})
    with pytest.raises(UpstreamError) as caught:
        ids(pager)
    assert caught.value.kind == "auth" and "NOPE" in caught.value.message
    assert len(httpserver.log) == 0


def test_wrong_credentials_fail_with_auth_401(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/x").respond_with_data("", status=401)
    pager, _ = pager_for(httpserver, "/x", auth={"type": "bearer", "token_env": "TOKEN"},
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
                     "client_id": "app", "client_secret_env": "SECRET",
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
