"""The tests' fake upstream: a real HTTP server on 127.0.0.1 whose pages each test controls.

    upstream.feed("orders", records=[...], page_size=10, delay=0.2)
    GET /feeds/orders?page=N -> {"data": [...page N...], "next": url | null}

A feed's data can be replaced between batches; `delay` (seconds per page) makes a batch
slow enough to observe while it is written; `hits` counts the pages served.
`upstream.catalog(name)` is a changing data set for incremental fetching, served as JSON,
JSON Lines, CSV, POST and GraphQL-style bodies, with a detail URL per item
(tests/support/catalog.py). The fixture
`upstream` (tests/conftest.py) is one server for the session. (`make run` serves demo/
instead; the HTTP client's own unit tests declare each answer with pytest-httpserver.)
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, jsonify, request
from werkzeug.serving import BaseWSGIServer, make_server

from tests.support.catalog import Catalog, blueprint


@dataclass
class Feed:
    records: list[Any]
    page_size: int = 10
    delay: float = 0.0
    hits: int = 0
    status: int = 200
    lock: threading.Lock = field(default_factory=threading.Lock)


class Upstream:
    """A threaded WSGI server serving feeds; use as a context manager."""

    def __init__(self) -> None:
        self.feeds: dict[str, Feed] = {}
        self.catalogs: dict[str, Catalog] = {}
        self.server: BaseWSGIServer = make_server("127.0.0.1", 0, self._app(), threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def url(self, name: str) -> str:
        return f"{self.base_url}/feeds/{name}"

    def feed(self, name: str, records: list[Any], **options: Any) -> Feed:
        """Create or replace the feed `name`."""
        self.feeds[name] = Feed(records=list(records), **options)
        return self.feeds[name]

    def catalog(self, name: str, **options: Any) -> Catalog:
        """Create or replace the catalog `name`; its routes are under /catalogs/<name>."""
        self.catalogs[name] = Catalog(name, **options)
        return self.catalogs[name]

    def _app(self) -> Flask:
        app = Flask("test-upstream")
        app.register_blueprint(blueprint(self.catalogs))

        @app.get("/feeds/<name>")
        def page(name: str) -> Any:
            feed = self.feeds[name]
            number = int(request.args.get("page", "1"))
            with feed.lock:
                feed.hits += 1
                records, size, status = feed.records, feed.page_size, feed.status
            if feed.delay:
                time.sleep(feed.delay)
            if status != 200:
                return jsonify({"error": "injected"}), status
            chunk = records[(number - 1) * size: number * size]
            more = number * size < len(records)
            next_url = f"{self.url(name)}?page={number + 1}" if more else None
            return jsonify({"data": chunk, "next": next_url})

        return app

    def __enter__(self) -> Upstream:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.thread.join(timeout=5)
