"""The SSRF guard: literal forms, resolved names, PUT-time 422, fetch-time forbidden_host.

Non-loopback addresses are only ever classified or returned by a stubbed resolver; every
connection made here goes to 127.0.0.1.
"""

from __future__ import annotations

import socket
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from pytest_httpserver import HTTPServer

from app.exceptions import UpstreamError
from app.hosts import check_url
from tests.support.httpserver import ids, pager_for

FORBIDDEN = ["http://127.0.0.1/", "http://10.0.0.1/", "http://169.254.169.254/latest/",
             "http://[::1]:8080/", "http://2130706433/", "http://0x7f000001/",
             "http://0177.0.0.1/", "http://127.1/", "http://[::ffff:127.0.0.1]/",
             "http://[::ffff:a9fe:a9fe]/", "http://0.0.0.0/", "http://224.0.0.1/",
             "http://192.168.1.10/", "http://[fe80::1]/", "http://100.64.0.1/",
             "ftp://example.com/", "file:///etc/passwd", "gopher://x/"]


def no_dns(host: str, port: int) -> list[str]:
    raise AssertionError(f"resolver called for {host}")


@pytest.mark.parametrize("url", FORBIDDEN)
def test_literal_forms_are_refused_without_resolving(url: str) -> None:
    with pytest.raises(UpstreamError) as caught:
        check_url(url, [], resolve=no_dns)
    assert caught.value.kind == "forbidden_host"


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "169.254.169.254", "::1",
                                     "::ffff:10.0.0.1"])
def test_names_resolving_to_private_addresses_are_refused(address: str) -> None:
    with pytest.raises(UpstreamError):
        check_url("https://api.example.com/x", [], resolve=lambda h, p: ["8.8.8.8", address])


def test_public_names_and_allowlisted_hosts_pass() -> None:
    check_url("https://api.example.com/x", [], resolve=lambda h, p: ["93.184.216.34"])
    check_url("http://10.0.0.5:8080/x", ["10.0.0.5:8080"], resolve=no_dns)
    check_url("http://internal.lan/x", ["internal.lan"], resolve=no_dns)
    with pytest.raises(UpstreamError):
        check_url("http://10.0.0.5:9999/x", ["10.0.0.5:8080"], resolve=no_dns)


def test_put_refuses_a_forbidden_source_url_with_422(client: FlaskClient) -> None:
    answer = client.put("/streams/meta", json={"source": {"url": "http://169.254.169.254/"}})
    assert answer.status_code == 422
    assert answer.get_json()["error"]["details"]["errors"][0]["field"] == "source.url"
    answer = client.put("/streams/tok", json={"source": {
        "url": "http://127.0.0.1:1/", "auth": {"type": "oauth2_client_credentials",
                                               "token_url": "http://10.0.0.1/token",
                                               "client_secret_env": "DS_SECRET_S"}}})
    assert answer.status_code == 422
    fields = [e["field"] for e in answer.get_json()["error"]["details"]["errors"]]
    assert fields == ["source.url", "source.auth.token_url"]


def test_put_accepts_allowlisted_and_public_hosts(client: FlaskClient, app: Flask,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    app.config["ALLOWED_SOURCE_HOSTS"] = ["127.0.0.1:8001"]
    answer = client.put("/streams/demo", json={"source": {"url": "http://127.0.0.1:8001/"}})
    assert answer.status_code == 201
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: [
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", 443))])
    answer = client.put("/streams/pub", json={"source": {"url": "https://api.example.com/"}})
    assert answer.status_code == 201


def test_fetch_to_a_loopback_that_is_not_allowlisted_fails(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/x").respond_with_json({"data": []})
    for url in [httpserver.url_for("/x"), f"http://localhost:{httpserver.port}/x"]:
        pager, _ = pager_for(httpserver, url, allow=False)
        with pytest.raises(UpstreamError) as caught:
            ids(pager)
        assert (caught.value.kind, caught.value.page) == ("forbidden_host", 1)
    assert len(httpserver.log) == 0


def test_dns_rebinding_is_caught_at_connect_time(httpserver: HTTPServer,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    real = socket.getaddrinfo

    def rebinding(host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        if host == "rebind.example":  # public at PUT time, loopback at fetch time
            return real("127.0.0.1", port, *args, **kwargs)
        return real(host, port, *args, **kwargs)
    check_url("http://rebind.example/", [], resolve=lambda h, p: ["93.184.216.34"])
    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    httpserver.expect_request("/x").respond_with_json({"data": []})
    pager, _ = pager_for(httpserver, f"http://rebind.example:{httpserver.port}/x", allow=False)
    with pytest.raises(UpstreamError) as caught:
        ids(pager)
    assert caught.value.kind == "forbidden_host"
    assert len(httpserver.log) == 0


def test_redirect_to_a_forbidden_address_fails(httpserver: HTTPServer) -> None:
    with HTTPServer(host="127.0.0.1", port=0) as other:
        other.expect_request("/secret").respond_with_json({"data": [{"id": "leak"}]})
        httpserver.expect_request("/r").respond_with_data(
            "", status=302, headers={"Location": other.url_for("/secret")})
        pager, _ = pager_for(httpserver, "/r")
        with pytest.raises(UpstreamError) as caught:
            ids(pager)
        assert caught.value.kind == "forbidden_host"
        assert len(other.log) == 0
    httpserver.clear()
    httpserver.expect_request("/r").respond_with_data(
        "", status=302, headers={"Location": "file:///etc/passwd"})
    pager, _ = pager_for(httpserver, "/r")
    with pytest.raises(UpstreamError) as caught:
        ids(pager)
    assert caught.value.kind == "forbidden_host"


@pytest.mark.parametrize("target", ["http://169.254.169.254/latest/meta-data/", "OTHER"])
def test_next_link_to_a_forbidden_address_fails(httpserver: HTTPServer, target: str) -> None:
    with HTTPServer(host="127.0.0.1", port=0) as other:
        other.expect_request("/p2").respond_with_json({"data": [{"id": 2}]})
        link = other.url_for("/p2") if target == "OTHER" else target
        httpserver.expect_request("/p1").respond_with_json({"data": [{"id": 1}], "next": link})
        pager, _ = pager_for(httpserver, "/p1", pagination={"type": "next_url"})
        with pytest.raises(UpstreamError) as caught:
            ids(pager)
        assert (caught.value.kind, caught.value.page) == ("forbidden_host", 2)
        assert len(other.log) == 0
