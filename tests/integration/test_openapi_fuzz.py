"""Schemathesis fuzzes every operation of the live app (werkzeug on 127.0.0.1, real Redis):
no 5xx, and every status, content type, header and body conforms to /openapi.json, the
paging, filter and If-None-Match parameters included; every tagged operation's 304 too.

The app runs in a thread of this process, with one stream ("s") published so that data,
changes and batches have something to answer. Bounded by MAX_EXAMPLES per operation.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from schemathesis import checks
from werkzeug.serving import make_server

from app import create_app
from config.settings import load_settings
from config.streams import StreamDefinition
from devtools.redis_server import RedisServer
from tests.support.seed import Seeder

pytestmark = pytest.mark.integration
PREFIX = "dsfuzz"
MAX_EXAMPLES = 40
CHECKS = [checks.not_a_server_error, checks.status_code_conformance,
          checks.content_type_conformance, checks.response_schema_conformance,
          checks.response_headers_conformance]
# Readiness answers 503 by design while no worker runs (none does here).
MAY_BE_UNAVAILABLE = {"GET /readyz"}


def publish_two_versions(app: Flask) -> None:
    """Publish two versions of stream "s" (ordered by "at")."""
    app.extensions["store"].definitions.put("s", StreamDefinition.model_validate(
        {"source": {"url": "http://127.0.0.1:1/x"}, "order_by": "at"}))
    seed = Seeder(app)
    for version in range(2):
        seed.publish("s", [{"id": i, "at": i + version} for i in range(5 + version)],
                     order_by="at")


@pytest.fixture(scope="module")
def live_url(redis_server: RedisServer) -> Iterator[str]:
    settings_ = load_settings({"REDIS_URL": redis_server.url})
    app = create_app({**settings_, "KEY_PREFIX": PREFIX})
    publish_two_versions(app)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)
    connection = app.extensions["redis"]
    for key in connection.scan_iter(f"{PREFIX}:*", count=1000):
        connection.delete(key)
    # Only the schedule entries the fuzzing started: the session's beat (started by an
    # earlier module) holds its lock under the same prefix and exits if it loses it.
    for key in connection.scan_iter("{redbeat}:stream:*", count=1000):
        connection.zrem("{redbeat}::schedule", key)
        connection.delete(key)


def test_every_operation_conforms(live_url: str) -> None:
    document = requests.get(f"{live_url}/openapi.json", timeout=10).json()
    api = schemathesis.openapi.from_dict(document)
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) >= 12
    for operation in operations:
        fuzz(operation, live_url)


def fuzz(operation: Any, base_url: str) -> None:
    """Run MAX_EXAMPLES generated cases of one operation through the checks."""

    @given(case=operation.as_strategy())
    @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    def run(case: schemathesis.Case) -> None:
        if operation.label in MAY_BE_UNAVAILABLE:
            response = case.call(base_url=base_url)
            if response.status_code == 503:
                return
            case.validate_response(response, checks=CHECKS)
        else:
            case.call_and_validate(base_url=base_url, checks=CHECKS)

    run()


def test_every_tagged_operation_answers_304_as_documented(live_url: str) -> None:
    document = requests.get(f"{live_url}/openapi.json", timeout=10).json()
    api = schemathesis.openapi.from_dict(document)
    tagged = [operation for operation in (result.ok() for result in api.get_all_operations())
              if "304" in operation.definition.raw["responses"]]
    assert {operation.label for operation in tagged} >= {
        "GET /streams/{name}", "GET /streams/{name}/data", "GET /streams/{name}/changes",
        "GET /streams/{name}/schema"}
    for operation in tagged:
        query = {"since": 1} if operation.path.endswith("/changes") else {}
        first = operation.Case(path_parameters={"name": "s"}, query=query)
        etag = first.call_and_validate(base_url=live_url, checks=CHECKS).headers["etag"][0]
        again = operation.Case(path_parameters={"name": "s"}, query=query,
                               headers={"If-None-Match": etag})
        response = again.call_and_validate(base_url=live_url, checks=CHECKS)
        assert response.status_code == 304, operation.label
