"""The shared rate limit: slots across workers, learnt blocks, rate_limited_until."""

from __future__ import annotations

import fakeredis
from flask.testing import FlaskClient
from pytest_httpserver import HTTPServer

from app.extensions import Store
from app.store.ratelimit import RateLimits
from config.source import Source
from tasks.upstream.throttle import Throttle, reset_seconds, retry_after_seconds
from tests.support.httpserver import ids, pager_for


def test_slots_are_spaced_across_workers(redis: fakeredis.FakeRedis) -> None:
    worker_a, worker_b = RateLimits(redis, "ds"), RateLimits(redis, "ds")
    waits = [limits.acquire("s", 0.5) for limits in (worker_a, worker_b, worker_a)]
    assert waits[0] == 0
    assert 0.45 <= waits[1] <= 0.5 and 0.95 <= waits[2] <= 1.0
    assert RateLimits(redis, "ds").acquire("other", 0.5) == 0


def test_a_block_delays_every_worker_and_shows_until(redis: fakeredis.FakeRedis) -> None:
    limits = RateLimits(redis, "ds")
    assert limits.limited_until("s") is None
    until = limits.block("s", 30)
    assert limits.block("s", 5) == until  # never shortened
    assert 29 <= RateLimits(redis, "ds").acquire("s") <= 30
    assert limits.limited_until("s") == until
    assert 29_000 <= redis.pttl("ds:{s}:rl:until") <= 30_000


def test_header_parsing() -> None:
    assert retry_after_seconds("7") == 7
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470) == 10
    assert retry_after_seconds("soon") is None
    assert reset_seconds({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1700000060"},
                         now=1700000000) == 60
    assert reset_seconds({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "12"}) == 12
    assert reset_seconds({"X-RateLimit-Remaining": "3", "X-RateLimit-Reset": "12"}) is None


def test_throttle_learns_from_headers_with_a_cap(redis: fakeredis.FakeRedis) -> None:
    source = Source(url="https://api.example.com/", retry_after_max=20)
    throttle = Throttle(source, RateLimits(redis, "ds"), "s", sleep=lambda s: None)
    throttle.learn(200, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "3600"})
    assert 19_000 <= redis.pttl("ds:{s}:rl:until") <= 20_000


def test_stream_shows_rate_limited_until(client: FlaskClient, store: Store) -> None:
    client.put("/streams/slow", json={"source": {"url": "https://api.example.com/x",
                                                  "rate_limit": {"requests_per_minute": 30}}})
    assert client.get("/streams/slow").get_json()["rate_limited_until"] is None
    until = RateLimits(store.connection, "ds").block("slow", 60)
    assert client.get("/streams/slow").get_json()["rate_limited_until"] == until


def test_a_429_blocks_the_stream_for_other_workers(httpserver: HTTPServer) -> None:
    redis = fakeredis.FakeRedis(decode_responses=True)
    httpserver.expect_ordered_request("/x").respond_with_data(
        "", status=429, headers={"Retry-After": "4"})
    httpserver.expect_ordered_request("/x").respond_with_json({"data": [{"id": 1}]})
    pager, sleeps = pager_for(httpserver, "/x", rate_limit={"requests_per_second": 100},
                              pager={"rate_limits": RateLimits(redis, "ds"), "stream": "s"})
    assert ids(pager) == [1]
    assert sleeps[0] == 4
    assert RateLimits(redis, "ds").limited_until("s") is not None
    assert 3 <= RateLimits(redis, "ds").acquire("s") <= 4
