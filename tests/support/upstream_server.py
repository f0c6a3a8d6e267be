"""A local upstream for the upstream client's tests: pytest-httpserver on 127.0.0.1.

`upstream` is one threaded server per test module, cleared after each test; `pager_for`
builds a Pager on a source dict with tiny retry waits, the server allow-listed, and a
recorded `sleep` so retry and rate-limit waits are asserted without being slept.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from config.source import Source
from tasks.upstream import Pager

FAST = {"backoff_initial": 0.01, "backoff_max": 0.05, "max_attempts": 3,
        "connect_timeout": 2, "read_timeout": 2}


@pytest.fixture(scope="module")
def upstream_server() -> Iterator[HTTPServer]:
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    yield server
    server.clear()
    if server.is_running():
        server.stop()


@pytest.fixture
def upstream(upstream_server: HTTPServer) -> Iterator[HTTPServer]:
    """Return the module's local upstream, with no handlers left from other tests."""
    upstream_server.clear()
    yield upstream_server
    upstream_server.clear()


class Sleeps(list[float]):
    """A `sleep` that records the waits instead of sleeping them."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def pager_for(server: HTTPServer, path: str, allow: bool = True, **source: Any
              ) -> tuple[Pager, Sleeps]:
    """Return a pager on `path` of the local upstream, and its recorded sleeps."""
    extra = source.pop("pager", {})
    url = path if path.startswith("http") else server.url_for(path)
    spec = {**FAST, "url": url, **source}
    sleeps = Sleeps()
    extra.setdefault("allowed_hosts", [f"127.0.0.1:{server.port}"] if allow else [])
    pager = Pager(Source.model_validate(spec), sleep=sleeps, **extra)
    return pager, sleeps


def ids(pager: Pager) -> list[Any]:
    """Return the ids of every record the pager yields, in order."""
    return [record["id"] for page in pager for record in page.records]
