"""Every pagination kind against a local upstream: all records once, the right stop rule."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from app.exceptions import UpstreamError
from tests.support.httpserver import ids, pager_for

ITEMS = [{"id": n} for n in range(1, 8)]  # 7 records


def page_of(request: Request, size: int = 3) -> list[dict]:
    page = int(request.args.get("page", 1))
    return ITEMS[(page - 1) * size: page * size]


def test_next_url_follows_relative_and_absolute_links(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/items").respond_with_json(
        {"data": ITEMS[:3], "next": "/items2?x=1"})
    httpserver.expect_request("/items2").respond_with_json(
        {"data": ITEMS[3:6], "meta": {"n": httpserver.url_for("/items3")}})
    httpserver.expect_request("/items3").respond_with_json({"data": ITEMS[6:], "next": None})
    pager, _ = pager_for(httpserver, "/items", pagination={"type": "next_url"})
    # /items2 answers "meta.n" not "next", so the default path stops there: check both paths.
    assert ids(pager) == [1, 2, 3, 4, 5, 6]
    assert pager.stop_reason == "no_next"
    pager, _ = pager_for(httpserver, "/items2", pagination={"type": "next_url",
                                                            "next_url_path": "meta.n"})
    assert ids(pager) == [4, 5, 6, 7]


def test_link_header_follows_rel_next(httpserver: HTTPServer) -> None:
    def handler(request: Request) -> Response:
        page = int(request.args.get("page", 1))
        headers = {}
        if page < 3:
            headers["Link"] = (f'<{httpserver.url_for("/repos")}?page={page + 1}>; rel="next", '
                               f'<{httpserver.url_for("/repos")}?page=3>; rel="last"')
        return Response(json.dumps(page_of(request)), headers=headers,
                        content_type="application/json")
    httpserver.expect_request("/repos").respond_with_handler(handler)
    pager, _ = pager_for(httpserver, "/repos", records_path="",
                         pagination={"type": "link_header"})
    assert ids(pager) == [1, 2, 3, 4, 5, 6, 7]
    assert pager.stop_reason == "no_next"


def test_page_number_stops_on_short_last_page(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/p").respond_with_handler(
        lambda r: Response(json.dumps({"results": page_of(r, int(r.args["per_page"]))}),
                           content_type="application/json"))
    pager, _ = pager_for(httpserver, "/p", records_path="results", pagination={
        "type": "page_number", "page_size_param": "per_page", "page_size": 3})
    assert ids(pager) == [1, 2, 3, 4, 5, 6, 7]
    assert pager.stop_reason == "short_page"


def test_page_number_stops_on_empty_page_and_at_total(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/p").respond_with_handler(
        lambda r: Response(json.dumps({"data": page_of(r), "pages": 2}),
                           content_type="application/json"))
    pager, _ = pager_for(httpserver, "/p", pagination={"type": "page_number"})
    assert ids(pager) == [1, 2, 3, 4, 5, 6, 7]
    assert pager.stop_reason == "empty_page"
    pager, _ = pager_for(httpserver, "/p", pagination={"type": "page_number",
                                                       "total_pages_path": "pages"})
    assert ids(pager) == [1, 2, 3, 4, 5, 6]
    assert pager.stop_reason == "total_reached"


def offset_handler(request: Request) -> Response:
    offset, limit = int(request.args["offset"]), int(request.args["limit"])
    body = {"items": ITEMS[offset:offset + limit], "total": len(ITEMS)}
    return Response(json.dumps(body), content_type="application/json")


@pytest.mark.parametrize(("limit", "total_path", "reason"), [
    (3, None, "short_page"), (7, None, "empty_page"), (7, "total", "total_reached"),
    (2, "total", "total_reached")])
def test_offset_kinds_of_stop(httpserver: HTTPServer, limit: int, total_path: str | None,
                              reason: str) -> None:
    httpserver.expect_request("/o").respond_with_handler(offset_handler)
    pager, _ = pager_for(httpserver, "/o", records_path="items", pagination={
        "type": "offset", "limit": limit, "total_path": total_path})
    assert ids(pager) == [1, 2, 3, 4, 5, 6, 7]
    assert pager.stop_reason == reason


def cursor_handler(request: Request) -> Response:
    start = int(request.args.get("cursor") or 0)
    chunk = ITEMS[start:start + 3]
    after = start + 3
    body = {"data": chunk, "meta": {"next_cursor": str(after) if after < 7 else "",
                                    "has_more": after < 7}}
    return Response(json.dumps(body), content_type="application/json")


@pytest.mark.parametrize(("has_more_path", "reason"), [(None, "no_next"),
                                                       ("meta.has_more", "has_more_false")])
def test_cursor_until_empty_or_has_more_false(httpserver: HTTPServer, has_more_path: str | None,
                                              reason: str) -> None:
    httpserver.expect_request("/c").respond_with_handler(cursor_handler)
    pager, _ = pager_for(httpserver, "/c", pagination={
        "type": "cursor", "cursor_path": "meta.next_cursor", "has_more_path": has_more_path})
    assert ids(pager) == [1, 2, 3, 4, 5, 6, 7]
    assert pager.stop_reason == reason


def test_cursor_sent_in_a_post_body(httpserver: HTTPServer) -> None:
    def handler(request: Request) -> Response:
        body = request.get_json()
        assert body["filter"] == "all"
        return cursor_handler(Request.from_values(query_string={"cursor": body.get("after")}))
    httpserver.expect_request("/search", method="POST").respond_with_handler(handler)
    pager, _ = pager_for(httpserver, "/search", method="POST", body={"filter": "all"},
                         pagination={"type": "cursor", "cursor_path": "meta.next_cursor",
                                     "cursor_param": "after", "params_in": "body"})
    assert ids(pager) == [1, 2, 3, 4, 5, 6, 7]


def test_none_reads_one_page_of_a_top_level_array(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/all", query_string="q=1").respond_with_json(ITEMS)
    pager, _ = pager_for(httpserver, "/all", records_path="", params={"q": 1})
    pages = list(pager)
    assert [p.number for p in pages] == [1]
    assert [r["id"] for r in pages[0].records] == [1, 2, 3, 4, 5, 6, 7]
    assert pager.stop_reason == "no_next"


@pytest.mark.parametrize("pagination", [
    {"type": "next_url"}, {"type": "page_number"}, {"type": "offset", "limit": 1},
    {"type": "cursor", "cursor_path": "next_cursor"}])
def test_every_kind_honours_max_pages(httpserver: HTTPServer, pagination: dict) -> None:
    counter = iter(range(1000))

    def endless(request: Request) -> Response:
        n = next(counter)
        body = {"data": [{"id": n}], "next": f"/e?n={n}", "next_cursor": f"c{n}"}
        return Response(json.dumps(body), content_type="application/json")
    httpserver.expect_request("/e").respond_with_handler(endless)
    pager, _ = pager_for(httpserver, "/e", max_pages=4, pagination=pagination)
    assert ids(pager) == [0, 1, 2, 3]
    assert pager.stop_reason == "max_pages"


def test_cursor_repeating_forever_is_a_pagination_loop(httpserver: HTTPServer) -> None:
    counter = iter(range(1000))
    httpserver.expect_request("/c").respond_with_handler(lambda r: Response(json.dumps(
        {"data": [{"id": next(counter)}], "cursor": "same"}), content_type="application/json"))
    pager, _ = pager_for(httpserver, "/c", pagination={"type": "cursor", "cursor_path": "cursor"})
    with pytest.raises(UpstreamError) as caught:
        ids(pager)
    assert caught.value.kind == "pagination_loop"
    assert caught.value.page == 2


def test_next_url_back_to_a_visited_page_is_a_loop(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/a").respond_with_json({"data": [{"id": 1}], "next": "/b"})
    httpserver.expect_request("/b").respond_with_json({"data": [{"id": 2}], "next": "/a"})
    pager, _ = pager_for(httpserver, "/a", pagination={"type": "next_url"})
    with pytest.raises(UpstreamError) as caught:
        ids(pager)
    assert (caught.value.kind, caught.value.page) == ("pagination_loop", 3)


def test_page_param_ignored_by_upstream_is_a_loop(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/same").respond_with_json({"data": ITEMS[:3]})
    pager, _ = pager_for(httpserver, "/same", pagination={"type": "page_number"})
    with pytest.raises(UpstreamError) as caught:
        ids(pager)
    assert (caught.value.kind, caught.value.page) == ("pagination_loop", 2)
    assert "page=2" in (caught.value.url or "")


def capped(records: int, cap: int, total: int | None, empty_from: int | None = None
           ) -> Callable[[Request], Response]:
    """An offset endpoint serving at most `cap` records a page, whatever the limit asked."""
    def handler(request: Request) -> Response:
        offset, limit = int(request.args["offset"]), int(request.args["limit"])
        end = offset if empty_from is not None and offset >= empty_from else min(
            offset + min(limit, cap), records)
        body = {"items": [{"id": n} for n in range(offset, end)], "total": total}
        return Response(json.dumps(body), content_type="application/json")
    return handler


def test_offset_capped_below_the_limit_goes_on_to_the_total(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/capped").respond_with_handler(capped(1012, 200, 1012))
    pager, _ = pager_for(httpserver, "/capped", records_path="items", pagination={
        "type": "offset", "limit": 500, "total_path": "total"})
    assert ids(pager) == list(range(1012))
    assert pager.stop_reason == "total_reached"
    # Each request starts after what was received (a retried one may repeat, under load).
    # The server is shared: a slow request of an earlier test may land in its log late.
    offsets = [int(r.args["offset"]) for r, _ in httpserver.log if r.path == "/capped"]
    assert list(dict.fromkeys(offsets)) == [0, 200, 400, 600, 800, 1000]


def test_offset_ending_before_its_total_is_incomplete(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/short").respond_with_handler(capped(1012, 200, 1012, 400))
    pager, _ = pager_for(httpserver, "/short", records_path="items", pagination={
        "type": "offset", "limit": 500, "total_path": "total"})
    with pytest.raises(UpstreamError) as caught:
        ids(pager)
    error = caught.value.to_dict()
    assert (error["kind"], error["expected"], error["received"], error["page"]) == (
        "incomplete", 1012, 400, 3)
    assert "1012" in error["message"] and "400" in error["message"]


def test_offset_without_a_total_still_stops_on_a_short_page(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/nototal").respond_with_handler(capped(1012, 200, None))
    pager, _ = pager_for(httpserver, "/nototal", records_path="items", pagination={
        "type": "offset", "limit": 500})
    assert len(ids(pager)) == 200 and pager.stop_reason == "short_page"


def pages_of(size: int, pages: int, served: int) -> Callable[[Request], Response]:
    """A page-number endpoint of `size`-record pages stating `pages`, serving `served`."""
    def handler(request: Request) -> Response:
        page = int(request.args["page"])
        count = size if page <= served else 0
        body = {"data": [{"id": (page - 1) * size + n} for n in range(count)], "pages": pages}
        return Response(json.dumps(body), content_type="application/json")
    return handler


def test_page_number_with_a_total_ignores_short_pages_and_fails_before_it(
        httpserver: HTTPServer) -> None:
    httpserver.expect_request("/pages").respond_with_handler(pages_of(2, 4, 4))
    httpserver.expect_request("/gone").respond_with_handler(pages_of(2, 4, 2))
    pagination = {"type": "page_number", "page_size_param": "per_page", "page_size": 5,
                  "total_pages_path": "pages"}
    pager, _ = pager_for(httpserver, "/pages", pagination=pagination)
    assert ids(pager) == list(range(8)) and pager.stop_reason == "total_reached"
    pager, _ = pager_for(httpserver, "/gone", pagination=pagination)
    with pytest.raises(UpstreamError) as caught:
        ids(pager)
    assert caught.value.to_dict() | {"message": ""} == {
        "kind": "incomplete", "message": "", "expected": 4, "received": 2, "unit": "pages",
        "page": 3, "url": httpserver.url_for("/gone") + "?page=3&per_page=5"}


def test_cursor_with_has_more_but_no_cursor_is_incomplete(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/c").respond_with_json(
        {"data": ITEMS[:3], "meta": {"next_cursor": None, "has_more": True}})
    pager, _ = pager_for(httpserver, "/c", pagination={
        "type": "cursor", "cursor_path": "meta.next_cursor", "has_more_path": "meta.has_more"})
    with pytest.raises(UpstreamError) as caught:
        ids(pager)
    assert (caught.value.kind, caught.value.to_dict()["received"]) == ("incomplete", 3)
