"""The bare endpoint reads are compared with: one ZRANGE of 100 members, returned as JSON.

Served under the same gunicorn command line as the web process; $BENCH_KEY names the
sorted set to read.
"""

from __future__ import annotations

import os

import orjson
import redis
from flask import Flask, Response


def create_app() -> Flask:
    """Build the bare app: GET /bare returns the first 100 members of $BENCH_KEY."""
    app = Flask("bare")
    connection = redis.Redis.from_url(os.environ["REDIS_URL"], decode_responses=True)
    key = os.environ["BENCH_KEY"]

    @app.get("/bare")
    def bare() -> Response:
        members = connection.zrange(key, 0, 99)
        body = orjson.dumps([orjson.Fragment(member) for member in members])
        return Response(body, mimetype="application/json")

    return app
