"""Faults injected by a local upstream: retried when they should be, else the exact kind."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from app.exceptions import UpstreamError
from tasks.upstream import Pager
from tests.support.httpserver import ids, pager_for


def failure(pager: Pager) -> UpstreamError:
    with pytest.raises(UpstreamError) as caught:
        ids(pager)
    return caught.value


def test_500_then_200_is_retried_with_backoff(httpserver: HTTPServer) -> None:
    httpserver.expect_ordered_request("/x").respond_with_data("boom", status=500)
    httpserver.expect_ordered_request("/x").respond_with_json({"data": [{"id": 1}]})
    pager, sleeps = pager_for(httpserver, "/x")
    assert ids(pager) == [1]
    assert len(sleeps) == 1 and 0.01 <= sleeps[0] <= 0.05


@pytest.mark.parametrize("form", ["seconds", "http-date"])
def test_429_honours_retry_after_in_both_forms(httpserver: HTTPServer, form: str) -> None:
    when = datetime.now(UTC) + timedelta(seconds=3)
    value = "3" if form == "seconds" else format_datetime(when, usegmt=True)
    httpserver.expect_ordered_request("/x").respond_with_data(
        "", status=429, headers={"Retry-After": value})
    httpserver.expect_ordered_request("/x").respond_with_json({"data": [{"id": 1}]})
    pager, sleeps = pager_for(httpserver, "/x")
    assert ids(pager) == [1]
    assert 1.5 <= sleeps[0] <= 3.01


def test_retry_after_is_capped(httpserver: HTTPServer) -> None:
    httpserver.expect_ordered_request("/x").respond_with_data(
        "", status=429, headers={"Retry-After": "86400"})
    httpserver.expect_ordered_request("/x").respond_with_json({"data": [{"id": 1}]})
    pager, sleeps = pager_for(httpserver, "/x", retry_after_max=5, max_retry_wait=10)
    assert ids(pager) == [1]
    assert max(sleeps) == 5


def test_retry_wait_beyond_max_retry_wait_fails_with_the_status(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/x").respond_with_data("", status=429,
                                                      headers={"Retry-After": "30"})
    pager, _ = pager_for(httpserver, "/x", max_retry_wait=10, max_attempts=5)
    error = failure(pager)
    assert (error.kind, error.status, error.attempts, error.page) == ("http_status", 429, 1, 1)


def test_persistent_503_fails_after_max_attempts(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/x").respond_with_data("", status=503)
    pager, sleeps = pager_for(httpserver, "/x", max_attempts=3)
    error = failure(pager)
    assert (error.kind, error.status, error.attempts) == ("http_status", 503, 3)
    assert len(sleeps) == 2
    assert len(httpserver.log) == 3


def test_other_4xx_fail_at_once(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/x").respond_with_data("", status=404)
    pager, sleeps = pager_for(httpserver, "/x")
    error = failure(pager)
    assert (error.kind, error.status, error.attempts) == ("http_status", 404, 1)
    assert sleeps == [] and len(httpserver.log) == 1


def test_read_timeout_is_retried_then_reported(httpserver: HTTPServer) -> None:
    def slow(request: Request) -> Response:
        time.sleep(0.6)
        return Response("{}", content_type="application/json")
    httpserver.expect_request("/slow").respond_with_handler(slow)
    pager, _ = pager_for(httpserver, "/slow", read_timeout=0.2, max_attempts=2)
    error = failure(pager)
    assert (error.kind, error.attempts, error.page) == ("timeout", 2, 1)


def test_read_timeout_then_success(httpserver: HTTPServer) -> None:
    calls = []

    def slow_once(request: Request) -> Response:
        calls.append(1)
        if len(calls) == 1:
            time.sleep(0.6)
        return Response('{"data": [{"id": 1}]}', content_type="application/json")
    httpserver.expect_request("/slow").respond_with_handler(slow_once)
    pager, _ = pager_for(httpserver, "/slow", read_timeout=0.2)
    assert ids(pager) == [1]


def test_connection_refused_is_a_connection_error(httpserver: HTTPServer) -> None:
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    pager, _ = pager_for(httpserver, f"http://127.0.0.1:{port}/x", max_attempts=2,
                         pager={"allowed_hosts": [f"127.0.0.1:{port}"]})
    error = failure(pager)
    assert (error.kind, error.attempts) == ("connection", 2)


def test_malformed_json_names_the_page_url_with_secrets_redacted(httpserver: HTTPServer,
                                                                 monkeypatch) -> None:
    monkeypatch.setenv("DS_SECRET_UPSTREAM_KEY", "s3cr3t")
    httpserver.expect_request("/a").respond_with_json({"data": [{"id": 1}],
                                                       "next": "/b?p=2&k=s3cr3t"})
    httpserver.expect_request("/b").respond_with_data("{not json", content_type="text/html")
    pager, _ = pager_for(httpserver, "/a", pagination={"type": "next_url"},
                         auth={"type": "api_key", "in": "query", "name": "k",
                               "value_env": "DS_SECRET_UPSTREAM_KEY"})
    error = failure(pager)
    assert (error.kind, error.page, error.status) == ("invalid_json", 2, 200)
    assert error.url == httpserver.url_for("/b") + "?p=2&k=REDACTED"
    assert "s3cr3t" not in str(error.to_dict())
    assert httpserver.log[1][0].args["k"] == "s3cr3t"


@pytest.mark.parametrize("body", [{"items": []}, {"data": {"not": "a list"}}])
def test_missing_or_non_list_records_path_names_the_page(httpserver: HTTPServer,
                                                         body: dict) -> None:
    httpserver.expect_request("/x").respond_with_json(body)
    pager, _ = pager_for(httpserver, "/x")
    error = failure(pager)
    assert (error.kind, error.page, error.url) == ("records_path", 1, httpserver.url_for("/x"))


@pytest.mark.parametrize("declared", [True, False])
def test_response_over_the_size_limit(httpserver: HTTPServer, declared: bool) -> None:
    big = b'{"data": [' + b'"xxxxxxxxxx",' * 500 + b'"x"]}'

    def handler(request: Request) -> Response:
        if declared:
            return Response(big, content_type="application/json")
        return Response(iter([big[:2000], big[2000:]]), content_type="application/json")
    httpserver.expect_request("/big").respond_with_handler(handler)
    pager, _ = pager_for(httpserver, "/big", max_response_bytes=4096)
    error = failure(pager)
    assert (error.kind, error.page) == ("response_too_large", 1)
