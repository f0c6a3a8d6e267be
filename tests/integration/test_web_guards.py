"""The real web process at its default settings (no tokens: loopback mode) against what a
reader, a probe storm, a foreign web page and bad input can do.

Readers never see secret material; /readyz answers from a short cache without holding the
web workers; requests from a foreign Host or a cross-origin write are refused; bad input
is a 4xx with the error shape; /docs and the status page load nothing from elsewhere.
"""

from __future__ import annotations

import base64
import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import orjson
import pytest
import requests

from tests.integration.conftest import Api

SECRETS = ("url-pass-7788", "query-token-9911", "header-secret-3344", "sig-secret-5566",
           "form-secret-1122", "body-secret-6655")


def secret_definition(port: int) -> dict[str, object]:
    return {"source": {
        "url": f"http://ann:url-pass-7788@127.0.0.1:{port}/items?access_token=query-token-9911"
               "&page_size=50",
        "headers": {"X-Api-Key": "header-secret-3344", "Accept": "application/json"},
        "params": {"sig": "sig-secret-5566", "limit": 10},
        "method": "POST", "body": {"query": "all", "api_token": "body-secret-6655"},
        "auth": {"type": "oauth2_client_credentials", "client_secret_env": "DS_SECRET_CS",
                 "token_url": f"http://127.0.0.1:{port}/token?client_secret=form-secret-1122"}},
        "key": "id", "description": "secrets inside"}


def test_readers_never_see_secret_material(api: Api, name: str) -> None:
    put = api.call("PUT", f"/streams/{name}", json=secret_definition(api.system.port))
    assert put.status_code == 201, put.text

    answers = [put, api.call("GET", f"/streams/{name}"), api.call("GET", "/streams"),
               api.call("GET", "/ui/overview")]

    for answer in answers:
        assert answer.status_code in (200, 201)
        assert not [secret for secret in SECRETS if secret in answer.text], answer.text
    source = answers[1].json()["definition"]["source"]
    assert source["url"].startswith("http://REDACTED@127.0.0.1:")
    assert "access_token=REDACTED" in source["url"] and "page_size=50" in source["url"]
    assert source["headers"] == {"X-Api-Key": "REDACTED", "Accept": "application/json"}
    assert source["params"] == {"sig": "REDACTED", "limit": 10}
    assert source["body"] == {"query": "all", "api_token": "REDACTED"}
    assert source["auth"]["client_secret_env"] == "DS_SECRET_CS"


def test_readyz_answers_a_storm_from_its_cache(api: Api) -> None:
    def probe(_: int) -> tuple[float, requests.Response]:
        started = time.monotonic()
        answer = requests.get(api.system.api("/readyz"), timeout=30)
        return time.monotonic() - started, answer

    with ThreadPoolExecutor(max_workers=16) as pool:
        storm = pool.map(probe, range(64))
        started = time.monotonic()
        listed = requests.get(api.system.api("/streams"), timeout=30)
        listing_took = time.monotonic() - started
        results = list(storm)

    times = sorted(took for took, _ in results)
    assert listed.status_code == 200 and listing_took < 2.5, listing_took
    assert times[-1] < 5.0 and times[len(times) // 2] < 0.5, times
    bodies = [answer.json() for _, answer in results]
    assert {answer.status_code for _, answer in results} == {200}
    # Two web workers, one check each at most (READY_CACHE_SECONDS 5 > this storm).
    assert len({body["checked_at"] for body in bodies}) <= 2
    queues = bodies[0]["checks"]["workers"]["queues"]
    assert set(queues) == {"fetch", "ingest"} and min(queues.values()) >= 1  # counted
    assert "@" not in orjson.dumps(bodies).decode()  # no worker hosts, to anyone


def test_foreign_hosts_and_cross_origin_writes_are_refused(api: Api, name: str) -> None:
    port = api.system.port
    api.define(name, f"http://127.0.0.1:{port}/nowhere")
    start = f"/streams/{name}/start"
    foreign = [{"Origin": "http://evil.example"}, {"Origin": "null"},
               {"Origin": f"http://127.0.0.1:{port + 1}"},
               {"Host": f"rebound.example:{port}"}, {"Host": f"127.0.0.1:{port + 1}"}]

    for headers in foreign:
        for method, path, body in (("POST", start, None), ("PUT", f"/streams/{name}", {}),
                                   ("DELETE", f"/streams/{name}", None)):
            answer = api.call(method, path, headers=headers, json=body)
            assert answer.status_code == 403, (headers, method, answer.text)
            assert answer.json()["error"]["code"] == "forbidden"
    assert api.call("GET", f"/streams/{name}", headers={"Host": "rebound.example"}
                    ).status_code == 403
    assert api.call("GET", "/healthz", headers={"Host": "rebound.example"}).status_code == 200
    assert api.status(name)["state"] == "stopped"
    for origin in (f"http://127.0.0.1:{port}", f"http://localhost:{port}"):
        host = urlsplit(origin).netloc
        answer = api.call("POST", f"/streams/{name}/stop", headers={"Origin": origin,
                                                                     "Host": host})
        assert answer.status_code == 200, answer.text


def cursor(body: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(body).encode()).decode().rstrip("=")


@pytest.mark.parametrize(("method", "path", "body", "status"), [
    ("PUT", "/streams/bad%0A", {"source": {"url": "http://127.0.0.1:1/"}}, 422),
    ("PUT", "/streams/Bad", {"source": {"url": "http://127.0.0.1:1/"}}, 422),
    ("GET", "/streams/abc%0A", None, 404),
    ("GET", "/streams/abc%0A/data", None, 404),
    ("PUT", "/streams/deep", "[" * 100_000 + "]" * 100_000, 400),
    ("PUT", "/streams/deep", '{"source": ' + "[" * 200 + "]" * 200 + "}", 400),
    ("POST", "/streams/deep/start", '{"interval_seconds": ' + "[" * 5000 + "]" * 5000 + "}",
     400),
    ("GET", "/streams/{name}/data?cursor=" + cursor({"v": 1, "o": 10**30}), None, 400),
    ("GET", "/streams/{name}/data?cursor=" + cursor({"v": 1, "o": 2**63}), None, 400),
    ("GET", "/streams/{name}/data?cursor=" + cursor({"v": 2**70, "o": 0}), None, 400),
    ("GET", "/streams/{name}/data?cursor=" + cursor({"v": 1, "o": 1.5}), None, 400),
    ("GET", "/streams/{name}/data?cursor=" + cursor({"v": "1", "o": "0"}), None, 400),
    ("GET", "/streams/{name}/data?cursor=" + cursor([1, 2]), None, 400),
    ("GET", "/streams/{name}/data?cursor=" + "A" * 3000, None, 400),
    ("GET", "/streams/{name}/changes?cursor=" + cursor({"f": 0, "t": 10**30, "k": "a"}),
     None, 400),
    ("GET", "/streams/{name}/data?version=" + "9" * 40, None, 400),
    ("GET", "/streams/{name}/changes?since=-1", None, 400),
    ("GET", "/streams/{name}/data?limit=1e3", None, 400),
])
def test_bad_input_is_a_4xx_with_the_error_shape(api: Api, name: str, method: str, path: str,
                                                 body: object, status: int) -> None:
    api.define(name, "http://127.0.0.1:1/x")
    data = body if isinstance(body, str) else None
    answer = api.call(method, path.format(name=name), json=None if data else body, data=data,
                      headers={"Content-Type": "application/json"} if data else {})
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert set(error) == {"code", "message", "details"}
    if path.startswith("/streams/Bad") or ("%0A" in path and method == "PUT"):
        assert "^[a-z0-9][a-z0-9_-]{0,63}$" in error["message"]


class Links(HTMLParser):
    """Every URL a page would load: src and href attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for key, value in attrs if key in ("src", "href") and value]


@pytest.mark.parametrize("page", ["/docs", "/"])
def test_pages_load_everything_from_this_server(api: Api, page: str) -> None:
    answer = api.call("GET", page)
    assert answer.status_code == 200
    policy = answer.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    parser = Links()
    parser.feed(answer.text)
    assert parser.urls
    base = api.system.api(page)
    for url in parser.urls:
        target = urljoin(base, url)
        assert urlsplit(target).netloc == urlsplit(base).netloc, url
        asset = api.call("GET", urlsplit(target).path)
        assert asset.status_code == 200, url
        text = asset.text if url.endswith((".js", ".css", ".html")) else ""
        # Scripts we serve name no remote URL to load, and Swagger UI asks no validator.
        if url.startswith("/static/"):
            assert not re.findall(r"https?://(?!127\.0\.0\.1)", text), url
    if page == "/docs":
        init = api.call("GET", "/static/docs/init.js").text
        assert '"/openapi.json"' in init and "validatorUrl: null" in init
