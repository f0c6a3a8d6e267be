"""Response formats, request bodies and the upstream's own words, against a local server."""

from __future__ import annotations

from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from app.exceptions import UpstreamError
from tasks.upstream import Pager
from tasks.upstream.bodies import place
from tests.support.httpserver import pager_for


def records(pager: Pager) -> list[Any]:
    return [record for page in pager for record in page.records]


def failure(pager: Pager) -> UpstreamError:
    with pytest.raises(UpstreamError) as caught:
        records(pager)
    return caught.value


def test_json_lines_are_one_record_per_line(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/x", headers={"Accept": "application/x-ndjson, "
                                                       "application/jsonl, application/json;"
                                                       "q=0.5"}).respond_with_data(
        '{"id": 1}\n\n{"id": 2, "tags": ["a"]}\n', content_type="application/x-ndjson")
    pager, _ = pager_for(httpserver, "/x", format="jsonl")
    assert records(pager) == [{"id": 1}, {"id": 2, "tags": ["a"]}]


def test_a_bad_line_names_the_record_the_line_and_the_content_type(
        httpserver: HTTPServer) -> None:
    httpserver.expect_request("/x").respond_with_data('{"id": 1}\n<oops>\n',
                                                      content_type="text/plain")
    error = failure(pager_for(httpserver, "/x", format="jsonl")[0])
    assert error.kind == "invalid_json" and error.page == 1
    assert error.message == ("record 2 (line 2) is not JSON (Content-Type text/plain): "
                             "<oops>")


def test_csv_rows_become_records_of_strings(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/x").respond_with_data(
        '\ufeffid;name;note\n1;"a; b";\n2;c;"say ""hi"""\n', content_type="text/csv")
    pager, _ = pager_for(httpserver, "/x", format="csv", csv={"delimiter": ";"})
    assert records(pager) == [{"id": "1", "name": "a; b", "note": ""},
                              {"id": "2", "name": "c", "note": 'say "hi"'}]


@pytest.mark.parametrize(("body", "expected"), [
    ("id,name\n1,a\n2,b,extra\n", "record 2 (line 3) has 3 fields, the header 2"),
    ("id,id\n1,2\n", "the CSV header has an empty or repeated column name"),
    ('id,name\n1,"open\n', "record 1 (line 2) is not valid CSV"),
])
def test_unparseable_csv_fails_naming_the_record(httpserver: HTTPServer, body: str,
                                                 expected: str) -> None:
    httpserver.expect_request("/x").respond_with_data(body, content_type="text/csv")
    error = failure(pager_for(httpserver, "/x", format="csv")[0])
    assert error.kind == "invalid_csv" and error.page == 1
    assert expected in error.message


def test_an_html_answer_to_a_json_source_says_so(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/x").respond_with_data(
        "<html><body><h1>Maintenance</h1></body></html>", content_type="text/html")
    error = failure(pager_for(httpserver, "/x")[0])
    assert error.kind == "invalid_json"
    assert error.message == ("upstream answer is not JSON (Content-Type text/html): "
                             "Maintenance")


def test_a_refusal_carries_the_upstream_s_words_without_secrets(
        httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DS_SECRET_SHOP_TOKEN", "s3cr3t-token-value")
    httpserver.expect_request("/x").respond_with_json(
        {"message": "Bad credentials: s3cr3t-token-value rejected",
         "documentation_url": "https://docs"}, status=403)
    pager, _ = pager_for(httpserver, "/x",
                         auth={"type": "bearer", "token_env": "DS_SECRET_SHOP_TOKEN"})
    error = failure(pager)
    assert error.kind == "http_status" and error.status == 403
    assert error.message == "upstream answered 403: message: Bad credentials: REDACTED rejected"


def test_a_token_endpoint_refusal_says_why(httpserver: HTTPServer,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DS_SECRET_CLIENT", "very-secret")
    httpserver.expect_request("/token", method="POST").respond_with_json(
        {"error": "invalid_client", "error_description": "client secret very-secret is "
                                                         "wrong"}, status=401)
    pager, _ = pager_for(httpserver, "/x", auth={
        "type": "oauth2_client_credentials", "token_url": httpserver.url_for("/token"),
        "client_id": "me", "client_secret_env": "DS_SECRET_CLIENT"})
    error = failure(pager)
    assert error.kind == "auth"
    assert error.message == ("token endpoint answered 401: error: invalid_client; "
                             "error_description: client secret REDACTED is wrong")


def test_a_graphql_error_answer_is_quoted(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/graphql", method="POST").respond_with_json(
        {"data": None, "errors": [{"message": "Cannot query field 'itemz'"}]})
    pager, _ = pager_for(httpserver, "/graphql", method="POST", body={"query": "{ itemz }"},
                         records_path="data.items.nodes")
    error = failure(pager)
    assert error.kind == "records_path"
    assert "the answer says errors: [{\"message\":\"Cannot query field 'itemz'\"}]" in (
        error.message)


def test_dotted_pagination_names_go_inside_the_body(httpserver: HTTPServer) -> None:
    query = {"query": "q", "variables": {"first": 2, "after": None}}
    httpserver.expect_ordered_request("/g", method="POST", json=query).respond_with_json(
        {"data": {"nodes": [{"id": 1}], "page": {"end": "c1"}}})
    httpserver.expect_ordered_request("/g", method="POST", json={
        "query": "q", "variables": {"first": 2, "after": "c1"}}).respond_with_json(
        {"data": {"nodes": [{"id": 2}], "page": {"end": None}}})
    pager, _ = pager_for(httpserver, "/g", method="POST", body=query,
                         records_path="data.nodes",
                         pagination={"type": "cursor", "cursor_path": "data.page.end",
                                     "cursor_param": "variables.after", "params_in": "body"})
    assert records(pager) == [{"id": 1}, {"id": 2}]
    assert query == {"query": "q", "variables": {"first": 2, "after": None}}


def test_a_body_name_through_a_non_object_fails_clearly() -> None:
    with pytest.raises(UpstreamError) as caught:
        place({"variables": "x"}, {"variables.after": 1})
    assert caught.value.kind == "body" and "'variables' is not an object" in (
        caught.value.message)
