"""HTTP as loaders expect it, on fakeredis: compression, ETags and 304s, Cache-Control, Link."""

from __future__ import annotations

import gzip
from typing import Any

import brotli
import orjson
import pytest
from backports import zstd
from flask.testing import FlaskClient

from app.extensions import Store
from config.streams import StreamDefinition
from tests.support.seed import Seeder

DECODERS = {"gzip": gzip.decompress, "br": brotli.decompress, "zstd": zstd.decompress}


def records(count: int, label: str = "a") -> list[dict[str, Any]]:
    return [{"id": i, "label": label, "text": f"record {i} of a catalogue"} for i in range(count)]


@pytest.fixture
def stream(store: Store, seed: Seeder) -> int:
    """Define stream "s" and publish a first version of 500 records; return it."""
    store.definitions.put("s", StreamDefinition.model_validate(
        {"source": {"url": "http://127.0.0.1:1/x"}, "key": "id"}))
    return seed.publish("s", records(500))


@pytest.mark.parametrize("coding", ["gzip", "br", "zstd"])
def test_compressed_page_holds_the_same_records_in_fewer_bytes(
        client: FlaskClient, stream: int, coding: str) -> None:
    plain = client.get("/streams/s/data?limit=200", headers={"Accept-Encoding": "identity"})
    packed = client.get("/streams/s/data?limit=200", headers={"Accept-Encoding": coding})

    assert "Content-Encoding" not in plain.headers
    assert packed.headers["Content-Encoding"] == coding
    assert "Accept-Encoding" in packed.headers["Vary"]
    assert orjson.loads(DECODERS[coding](packed.data)) == plain.json
    assert len(packed.data) < len(plain.data) / 4


def test_export_is_compressed_as_it_streams(client: FlaskClient, stream: int) -> None:
    response = client.get("/streams/s/data?format=ndjson", headers={"Accept-Encoding": "gzip"},
                          buffered=False)

    assert response.is_streamed and response.headers["Content-Encoding"] == "gzip"
    assert "Content-Length" not in response.headers
    body = gzip.decompress(b"".join(response.response))
    response.close()
    assert [orjson.loads(line) for line in body.splitlines()] == records(500)


def test_small_answers_stay_plain(client: FlaskClient, stream: int) -> None:
    response = client.get("/streams/s/data?limit=1", headers={"Accept-Encoding": "gzip"})

    assert "Content-Encoding" not in response.headers
    assert response.headers["ETag"].endswith('"') and ":gzip" not in response.headers["ETag"]


@pytest.mark.parametrize("path", ["/streams/s/data?limit=50", "/streams/s/data?format=ndjson",
                                  "/streams/s/data?format=csv", "/streams/s/changes?since=0",
                                  "/streams/s/schema"])
def test_current_version_revalidates_until_a_new_one_publishes(
        client: FlaskClient, seed: Seeder, stream: int, path: str) -> None:
    first = client.get(path, headers={"Accept-Encoding": "gzip"}, buffered=True)
    etag = first.headers["ETag"]
    assert first.status_code == 200 and etag.startswith(f'"v{stream}-')
    assert first.headers["Cache-Control"] == "no-cache"

    again = client.get(path, headers={"Accept-Encoding": "gzip", "If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    assert again.headers["ETag"] == etag and again.headers["Cache-Control"] == "no-cache"

    seed.publish("s", records(400, "b"))
    changed = client.get(path, headers={"Accept-Encoding": "gzip", "If-None-Match": etag},
                         buffered=True)
    assert changed.status_code == 200 and changed.headers["ETag"] != etag


def test_a_tag_matches_in_any_coding_and_a_query_has_its_own(client: FlaskClient,
                                                             stream: int) -> None:
    gzipped = client.get("/streams/s/data?limit=50", headers={"Accept-Encoding": "gzip"})
    tag = gzipped.headers["ETag"]
    assert tag.endswith(':gzip"')

    plain = client.get("/streams/s/data?limit=50", headers={"If-None-Match": tag})
    other = client.get("/streams/s/data?limit=51", headers={"If-None-Match": tag})
    starred = client.get("/streams/s/data?limit=51", headers={"If-None-Match": "*"})

    assert plain.status_code == 304
    assert other.status_code == 200
    assert starred.status_code == 304


def test_a_pinned_version_may_be_kept_long(client: FlaskClient, stream: int) -> None:
    first = client.get("/streams/s/data?limit=100")
    pinned = client.get(f"/streams/s/data?limit=100&version={stream}")
    following = client.get("/streams/s/data", query_string={"cursor": first.json["next_cursor"]})

    for response in (pinned, following):
        assert response.headers["Cache-Control"] == "max-age=31536000, immutable"
    assert pinned.headers["ETag"] == first.headers["ETag"]
    assert client.get("/streams/s/data?limit=100", headers={
        "If-None-Match": pinned.headers["ETag"]}).headers["Cache-Control"] == "no-cache"


def test_link_header_walks_a_whole_version(client: FlaskClient, stream: int) -> None:
    seen: list[Any] = []
    url: str | None = "/streams/s/data?limit=64"
    for _ in range(20):
        if url is None:
            break
        response = client.get(url)
        seen += response.json["records"]
        links = response.headers.getlist("Link")
        assert (len(links) == 1) == (response.json["next_cursor"] is not None)
        url = links[0].split(";")[0].strip("<>") if links else None
        assert url is None or "limit=64" in url
    assert seen == records(500)


def test_stream_description_has_a_weak_tag_that_follows_its_state(
        client: FlaskClient, stream: int) -> None:
    first = client.get("/streams/s")
    etag = first.headers["ETag"]
    assert etag.startswith('W/"') and first.headers["Cache-Control"] == "no-cache"
    assert client.get("/streams/s", headers={"If-None-Match": etag}).status_code == 304

    client.post("/streams/s/start", json={"run_now": False})

    started = client.get("/streams/s", headers={"If-None-Match": etag})
    assert started.status_code == 200 and started.json["state"] == "running"
    assert started.headers["ETag"] != etag


@pytest.mark.parametrize("path", ["/", "/static/ui/app.js"])
def test_the_page_shell_is_compressed_and_revalidated(client: FlaskClient, path: str) -> None:
    first = client.get(path, headers={"Accept-Encoding": "gzip"}, buffered=True)
    again = client.get(path, headers={"Accept-Encoding": "gzip",
                                      "If-None-Match": first.headers["ETag"]}, buffered=True)

    assert first.headers["Content-Encoding"] == "gzip"
    assert again.status_code == 304 and again.data == b""
