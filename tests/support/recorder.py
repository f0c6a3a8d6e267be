"""A recording upstream: a real HTTP server on 127.0.0.1 that keeps every request it got.

    with Recorder() as a, Recorder() as b:          # two origins: two ports
        a.route("/items", lambda req: ({"data": [...], "next": b.url("/more")}, 200, {}))
        ...
        b.received("/more")                         # [Seen(path, args, headers), ...]

Security tests read what each listener received (headers and query, as sent), to show
that credentials reached only the origin they belong to.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.serving import BaseWSGIServer, make_server

Answer = tuple[Any, int, dict[str, str]]
Handler = Callable[["Seen"], Answer]


@dataclass(frozen=True)
class Seen:
    """One request as the server received it."""

    method: str
    path: str
    args: dict[str, str]
    headers: dict[str, str]
    raw: str  # request line, headers and body, to search for a secret anywhere


class Recorder:
    """A threaded WSGI server answering routes with handlers; use as a context manager."""

    def __init__(self) -> None:
        self.routes: dict[str, Handler] = {}
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        self.server: BaseWSGIServer = make_server("127.0.0.1", 0, self._app(), threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def url(self, path: str) -> str:
        return f"{self.origin}{path}"

    def route(self, path: str, handler: Handler) -> None:
        """Answer GET and POST on `path` with `handler(seen)` -> (body, status, headers)."""
        self.routes[path] = handler

    def received(self, path: str | None = None) -> list[Seen]:
        """Return the requests received (on `path` only, when given)."""
        with self.lock:
            return [seen for seen in self.seen if path is None or seen.path == path]

    def _app(self) -> Flask:
        app = Flask("recorder")

        @app.route("/<path:path>", methods=["GET", "POST"])
        def answer(path: str) -> Response:
            body = request.get_data(as_text=True)
            lines = [f"{request.method} {request.full_path}"]
            lines += [f"{name}: {value}" for name, value in request.headers.items()]
            seen = Seen(request.method, f"/{path}", request.args.to_dict(),
                        dict(request.headers.items()), "\n".join([*lines, "", body]))
            with self.lock:
                self.seen.append(seen)
            handler = self.routes.get(f"/{path}")
            if handler is None:
                return Response("{}", status=404, content_type="application/json")
            payload, status, headers = handler(seen)
            response = jsonify(payload) if not isinstance(payload, Response) else payload
            response.status_code = status
            response.headers.update(headers)
            return response

        return app

    def __enter__(self) -> Recorder:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.thread.join(timeout=5)
