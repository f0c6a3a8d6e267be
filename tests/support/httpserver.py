"""pytest-httpserver for the upstream client's unit tests, and helpers to page through it.

The plugin's `httpserver` fixture answers each test's requests as the test declares them;
`make_httpserver` replaces the plugin's server with a threaded one on 127.0.0.1, so a slow
handler never blocks the retry that follows it. `pager_for` builds a Pager on a source
dict with tiny retry waits, the server allow-listed, and a recorded `sleep` so retry and
rate-limit waits are asserted without being slept.
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


@pytest.fixture(scope="session")
def make_httpserver() -> Iterator[HTTPServer]:
    """Return the session's threaded server (the plugin clears it before each test)."""
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    yield server
    server.clear()
    if server.is_running():
        server.stop()


class Sleeps(list[float]):
    """A `sleep` that records the waits instead of sleeping them."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def pager_for(server: HTTPServer, path: str, allow: bool = True, **source: Any
              ) -> tuple[Pager, Sleeps]:
    """Return a pager on `path` of the server, and its recorded sleeps."""
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
