"""The data API speaks HTTP as loaders expect, on the real processes: compression, ETags and
304s across a publish, Link headers, and the stream list at 1,000 streams."""

from __future__ import annotations

import gzip
from typing import Any

import orjson
import requests

from app.store import build_store
from config.settings import load_settings
from config.streams import StreamDefinition
from tests.integration.conftest import Api
from tests.support.upstream import Upstream
from tests.support.waiting import wait_for


def catalogue(count: int, label: str) -> list[dict[str, Any]]:
    return [{"id": i, "label": label, "note": f"item {i} of the {label} catalogue"}
            for i in range(1, count + 1)]


def first_version(api: Api, upstream: Upstream, name: str, records: list[Any]) -> int:
    """Define `name` on the upstream, fetch it once and stop; return the version."""
    upstream.feed(name, records, page_size=100)
    api.define(name, upstream.url(name))
    api.start(name)
    version = wait_for(lambda: api.current_version(name), what="first batch")
    api.stop(name)
    return int(version)


def raw(api: Api, path: str, coding: str) -> tuple[dict[str, str], bytes]:
    """GET `path` accepting `coding`; return its headers and its body as sent (encoded)."""
    with api.http.get(api.system.api(path), headers={"Accept-Encoding": coding},
                      stream=True, timeout=10) as response:
        assert response.status_code == 200, response.status_code
        return dict(response.headers), response.raw.read(decode_content=False)


def test_a_gzip_client_gets_the_same_records_in_fewer_bytes(api: Api, upstream: Upstream,
                                                            name: str) -> None:
    first_version(api, upstream, name, catalogue(2000, "a"))

    plain_page = raw(api, f"/streams/{name}/data?limit=1000", "identity")
    gzip_page = raw(api, f"/streams/{name}/data?limit=1000", "gzip")
    plain_export = raw(api, f"/streams/{name}/data?format=ndjson", "identity")
    gzip_export = raw(api, f"/streams/{name}/data?format=ndjson", "gzip")

    assert "Content-Encoding" not in plain_page[0]
    assert gzip_page[0]["Content-Encoding"] == gzip_export[0]["Content-Encoding"] == "gzip"
    assert orjson.loads(gzip.decompress(gzip_page[1])) == orjson.loads(plain_page[1])
    assert gzip.decompress(gzip_export[1]) == plain_export[1]
    assert [orjson.loads(line) for line in plain_export[1].splitlines()] == catalogue(2000, "a")
    for what, plain, packed in (("page of 1000", plain_page, gzip_page),
                                ("export", plain_export, gzip_export)):
        print(f"\n{what}: {len(plain[1])} bytes plain, {len(packed[1])} gzip")
        assert len(packed[1]) < len(plain[1]) / 4


def test_if_none_match_is_304_until_a_new_version_publishes(api: Api, upstream: Upstream,
                                                            name: str) -> None:
    version = first_version(api, upstream, name, catalogue(300, "a"))
    path = f"/streams/{name}/data?limit=100"
    first = api.call("GET", path, headers={"Accept-Encoding": "gzip"})
    etag = first.headers["ETag"]
    assert first.headers["Cache-Control"] == "no-cache"
    for _ in range(3):
        again = api.call("GET", path, headers={"Accept-Encoding": "gzip", "If-None-Match": etag})
        assert (again.status_code, again.content, again.headers["ETag"]) == (304, b"", etag)

    upstream.feed(name, catalogue(250, "b"), page_size=100)
    api.start(name)
    statuses: list[int] = []

    def changed() -> requests.Response | None:
        answer = api.call("GET", path, headers={"Accept-Encoding": "gzip", "If-None-Match": etag})
        statuses.append(answer.status_code)
        return answer if answer.status_code != 304 else None

    fresh = wait_for(changed, what="a 200 once the new version is published")
    api.stop(name)

    assert fresh.status_code == 200 and fresh.headers["ETag"] != etag
    assert int(fresh.headers["X-Stream-Version"]) > version
    assert fresh.json()["records"] == catalogue(100, "b")
    assert set(statuses[:-1]) <= {304}
    assert api.call("GET", path, headers={"If-None-Match": fresh.headers["ETag"]}
                    ).status_code == 304


def test_a_client_following_only_link_headers_walks_a_whole_version(
        api: Api, upstream: Upstream, name: str) -> None:
    first_version(api, upstream, name, catalogue(250, "a"))
    url: str | None = api.system.api(f"/streams/{name}/data?limit=23")
    records: list[Any] = []
    versions: set[str] = set()
    for _ in range(100):
        if url is None:
            break
        response = api.http.get(url, timeout=10)
        assert response.status_code == 200
        versions.add(response.headers["X-Stream-Version"])
        records += response.json()["records"]
        url = response.links.get("next", {}).get("url")

    assert url is None and len(versions) == 1
    assert records == catalogue(250, "a")


def test_listings_of_1000_streams_page_correctly(api: Api, upstream: Upstream) -> None:
    store = build_store(api.system.redis, load_settings({"REDIS_URL": api.system.redis_url}))
    definition = StreamDefinition.model_validate({"source": {"url": upstream.url("many")}})
    names = [f"many-{i:04d}" for i in range(1000)]
    for name in reversed(names):
        store.definitions.put(name, definition)
    running = names[::37]
    for name in running:
        api.start(name, run_now=False, interval_seconds=7 * 24 * 3600)

    every = walk(api, "/streams?limit=97")
    started = walk(api, "/streams?limit=10&state=running")
    stopped = walk(api, "/streams?limit=250&state=stopped")

    assert [line["stream"] for line in every] == names
    assert [line["stream"] for line in started] == running
    assert all(line["interval_seconds"] == 7 * 24 * 3600 for line in started)
    assert len(stopped) == 1000 - len(running)
    assert {line["stream"] for line in stopped}.isdisjoint(running)
    for name in running:
        api.stop(name)


def walk(api: Api, path: str) -> list[dict[str, Any]]:
    """Follow Link headers from `path`; check each page's next_cursor matches its Link."""
    url: str | None = api.system.api(path)
    lines: list[dict[str, Any]] = []
    for _ in range(200):
        if url is None:
            return lines
        response = api.http.get(url, timeout=10)
        assert response.status_code == 200, response.text
        body = response.json()
        lines += body["streams"]
        url = response.links.get("next", {}).get("url")
        assert (url is None) == (body["next_cursor"] is None)
    raise AssertionError("the list never ended")
