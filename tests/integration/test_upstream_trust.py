"""What the real worker sends upstream, at the default settings, read from the listeners.

Two recording upstreams on two 127.0.0.1 ports stand for two origins. Credentials and
custom headers reach only the origin of `source.url` (a next link, a Link header or a
redirect elsewhere gets none; a token endpoint's redirect fails the batch); a definition
can name only `DS_SECRET_` variables and `$ref`s inside its schema, refused at PUT and
again by the worker for a definition that got in some other way; pagination never stops
before the total the upstream states. This module starts its own processes, with upstream
secrets in the worker's environment.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests

from app.store.keys import StreamKeys, names_key
from devtools.redis_server import RedisServer
from devtools.system import System
from tests.support.recorder import Recorder, Seen
from tests.support.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "upstream-token-4b9e17"
SHOP_KEY = "shop-key-77aa02"
CLIENT_SECRET = "client-secret-c0ffee"
TENANT = "tenant-header-5521ab"

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def trust(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    server = RedisServer(tmp_path_factory.mktemp("redis-trust")).start()
    system = System(server.url, ROOT / "test-output" / "upstream-trust",
                    DS_SECRET_UPSTREAM_TOKEN=TOKEN, DS_SECRET_SHOP_KEY=SHOP_KEY,
                    DS_SECRET_CLIENT=CLIENT_SECRET)
    try:
        yield system.start_all()
    finally:
        system.stop_all()
        server.stop()


@pytest.fixture
def origins() -> Iterator[tuple[Recorder, Recorder]]:
    with Recorder() as home, Recorder() as other:
        yield home, other


def put(system: System, name: str, source: dict[str, Any], **fields: Any) -> requests.Response:
    body = {"source": {"records_path": "data", **source}, "key": "id", **fields}
    return requests.put(system.api(f"/streams/{name}"), json=body, timeout=10)


def run(system: System, name: str) -> dict[str, Any]:
    """Start `name`, return its first batch once it has ended, and stop it."""
    assert requests.post(system.api(f"/streams/{name}/start"), timeout=10).status_code == 200

    def ended() -> dict[str, Any] | None:
        batches = requests.get(system.api(f"/streams/{name}/batches"), timeout=10).json()
        done = [b for b in batches["batches"] if b["status"] != "running"]
        return done[0] if done else None

    batch = wait_for(ended, timeout=30, what=f"the first batch of {name}")
    requests.post(system.api(f"/streams/{name}/stop"), timeout=10)
    return batch


def page(ids: range, following: str | None) -> tuple[Any, int, dict[str, str]]:
    return {"data": [{"id": n} for n in ids], "next": following}, 200, {}


def leaked(seen: list[Seen]) -> list[str]:
    """Return every secret value found anywhere in these requests."""
    return [secret for secret in (TOKEN, SHOP_KEY, CLIENT_SECRET, TENANT)
            for one in seen if secret in one.raw]


def test_credentials_and_custom_headers_reach_only_their_origin(
        trust: System, origins: tuple[Recorder, Recorder]) -> None:
    home, other = origins
    # next_url to another origin, and back home.
    home.route("/items", lambda seen: page(range(1, 4), other.url("/more")))
    other.route("/more", lambda seen: page(range(4, 7), home.url("/last")))
    home.route("/last", lambda seen: page(range(7, 10), None))
    # A redirect (307) to another origin, with the key echoed in the Location.
    home.route("/moved", lambda seen: ("", 307, {
        "Location": other.url(f"/landing?api_key={seen.args.get('api_key')}")}))
    other.route("/landing", lambda seen: page(range(1, 3), None))
    # A Link header to another origin that echoes the key in its query.
    home.route("/linked", lambda seen: ([{"id": 1}], 200, {
        "Link": f'<{other.url("/linked2")}?api_key={seen.args.get("api_key")}>; rel="next"'}))
    other.route("/linked2", lambda seen: ([{"id": 2}], 200, {}))
    bearer = {"type": "bearer", "token_env": "DS_SECRET_UPSTREAM_TOKEN"}
    in_query = {"type": "api_key", "in": "query", "name": "api_key",
                "value_env": "DS_SECRET_SHOP_KEY"}
    headers = {"X-Tenant-Key": TENANT}
    assert put(trust, "cross-next", {"url": home.url("/items"), "auth": bearer,
                                     "headers": headers,
                                     "pagination": {"type": "next_url"}}).ok
    assert put(trust, "cross-redirect", {"url": home.url("/moved"), "auth": in_query,
                                         "headers": headers}).ok
    assert put(trust, "cross-link", {"url": home.url("/linked"), "auth": in_query,
                                     "records_path": "", "headers": headers,
                                     "pagination": {"type": "link_header"}}).ok

    batches = [run(trust, name) for name in ("cross-next", "cross-redirect", "cross-link")]

    assert [(b["status"], b["records"]) for b in batches] == [
        ("complete", 9), ("complete", 2), ("complete", 2)]
    assert leaked(other.received()) == [] and len(other.received()) == 3
    assert all("Authorization" not in seen.headers and "X-Tenant-Key" not in seen.headers
               for seen in other.received())
    for seen in home.received("/items") + home.received("/last"):
        assert seen.headers["Authorization"] == f"Bearer {TOKEN}"
        assert seen.headers["X-Tenant-Key"] == TENANT
    assert home.received("/moved")[0].args["api_key"] == SHOP_KEY
    assert home.received("/linked")[0].args["api_key"] == SHOP_KEY


def test_a_token_endpoint_that_redirects_gets_no_client_secret_elsewhere(
        trust: System, origins: tuple[Recorder, Recorder]) -> None:
    home, other = origins
    home.route("/token", lambda seen: ("", 307, {"Location": other.url("/token")}))
    other.route("/token", lambda seen: ({"access_token": "stolen", "expires_in": 60}, 200, {}))
    home.route("/api", lambda seen: page(range(1, 3), None))
    auth = {"type": "oauth2_client_credentials", "token_url": home.url("/token"),
            "client_id": "app", "client_secret_env": "DS_SECRET_CLIENT", "client_auth": "body"}
    assert put(trust, "token-redirect", {"url": home.url("/api"), "auth": auth}).ok

    batch = run(trust, "token-redirect")

    assert batch["status"] == "failed" and batch["error"]["kind"] == "auth"
    assert "redirect" in batch["error"]["message"]
    assert other.received() == [] and home.received("/api") == []
    assert CLIENT_SECRET in home.received("/token")[0].raw


def plant(system: System, name: str, definition: dict[str, Any]) -> None:
    """Store a definition directly, as one written before today's PUT checks would be."""
    keys = StreamKeys("ds", name)
    system.redis.set(keys.definition, orjson.dumps(definition))
    system.redis.zadd(names_key("ds"), {name: 0})


@pytest.mark.parametrize("variable", ["REDIS_URL", "API_TOKEN", "PATH"])
def test_only_secret_variables_may_be_named(trust: System, origins: tuple[Recorder, Recorder],
                                            variable: str) -> None:
    home, _ = origins
    home.route("/env", lambda seen: page(range(1, 3), None))
    auth = {"type": "bearer", "token_env": variable}

    refused = put(trust, f"env-put-{variable.lower()}", {"url": home.url("/env"), "auth": auth})

    assert refused.status_code == 422
    [error] = refused.json()["error"]["details"]["errors"]
    assert error["field"] == "source.auth.bearer.token_env" and "DS_SECRET_" in error["message"]
    name = f"env-planted-{variable.lower()}"
    plant(trust, name, {"source": {"url": home.url("/env"), "auth": auth}, "key": "id"})
    batch = run(trust, name)
    assert batch["status"] == "failed" and batch["error"]["kind"] == "auth"
    assert "SECRET_ENV_PREFIX" in batch["error"]["message"]
    assert home.received() == []  # the worker refused before sending anything


@pytest.mark.parametrize(("case", "ref"), list(enumerate([
    "{other}/schema.json", "file:///etc/passwd", "data:application/json,{{}}",
    "other.json#/x"])))
def test_schemas_refer_only_to_themselves(trust: System, origins: tuple[Recorder, Recorder],
                                          case: int, ref: str) -> None:
    home, other = origins
    home.route("/rows", lambda seen: page(range(1, 3), None))
    other.route("/schema.json", lambda seen: ({"type": "object"}, 200, {}))
    schema = {"type": "object", "properties": {"id": {"$ref": ref.format(other=other.origin)}}}
    middleware = [{"type": "validate", "schema": schema}]

    refused = put(trust, f"ref-put-{case}", {"url": home.url("/rows")}, middleware=middleware)

    assert refused.status_code == 422, refused.text
    assert "$ref" in refused.json()["error"]["message"]
    plant(trust, f"ref-planted-{case}", {"source": {"url": home.url("/rows")}, "key": "id",
                                         "middleware": middleware})
    batch = run(trust, f"ref-planted-{case}")
    assert batch["status"] == "failed" and batch["error"]["kind"] == "middleware"
    assert other.received() == []


def offsets(records: int, cap: int, total: int, empty_from: int | None = None):
    """Return an offset endpoint serving `records`, at most `cap` a page, stating `total`."""
    def handler(seen: Seen) -> tuple[Any, int, dict[str, str]]:
        start, asked = int(seen.args["offset"]), int(seen.args["limit"])
        end = start if empty_from is not None and start >= empty_from else min(
            start + min(asked, cap), records)
        return {"data": [{"id": n} for n in range(start, end)], "total": total}, 200, {}
    return handler


def test_pagination_goes_on_to_the_total_and_fails_short_of_it(
        trust: System, origins: tuple[Recorder, Recorder]) -> None:
    home, _ = origins
    home.route("/capped", offsets(1012, cap=200, total=1012))
    home.route("/lying", offsets(1012, cap=200, total=1012, empty_from=400))
    pagination = {"type": "offset", "limit": 500, "total_path": "total"}
    assert put(trust, "capped", {"url": home.url("/capped"), "pagination": pagination}).ok
    assert put(trust, "lying", {"url": home.url("/lying"), "pagination": pagination}).ok

    capped, lying = run(trust, "capped"), run(trust, "lying")

    assert (capped["status"], capped["records"], capped["stop_reason"]) == (
        "complete", 1012, "total_reached")
    assert [int(seen.args["offset"]) for seen in home.received("/capped")] == [
        0, 200, 400, 600, 800, 1000]
    assert lying["status"] == "failed"
    error = lying["error"]
    assert (error["kind"], error["expected"], error["received"]) == ("incomplete", 1012, 400)
    assert requests.get(trust.api("/streams/lying/data"), timeout=10).status_code == 404
