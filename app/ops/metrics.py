"""Prometheus metrics: what the processes count, and `/metrics`, which shows them.

Counters and histograms are recorded where things happen (ingest consumer: batches;
worker: upstream requests, retries, rate-limit waits) and live in prometheus-client's
multi-process files under ``PROMETHEUS_MULTIPROC_DIR`` when it is set (`make run` and
devtools set it to a directory under ``var/``), so gunicorn workers and Celery pool
children each write their own and `/metrics` adds them up. Without it (unit tests) they
live in the process's default registry. Freshness and queue depths are read from Redis
at scrape time by `RedisCollector`, so they are right whichever process answers.

    ds_batches_total{stream,status}            batches ended: published, quarantined, failed...
    ds_batch_duration_seconds{stream}          start to publish of published batches
    ds_batch_records{stream}                   records of published batches
    ds_upstream_requests_total{stream,status}  upstream responses by HTTP status (or error kind)
    ds_upstream_request_seconds{stream}        upstream request latency
    ds_upstream_retries_total{kind}            retried upstream attempts
    ds_rate_limit_waits_total{stream}          waits for the stream's rate limit
    ds_rate_limit_wait_seconds_total{stream}   time spent in those waits
    ds_stream_freshness_seconds{stream}        seconds since the current version was published
    ds_stream_current_version{stream}          the version being served
    ds_stream_interval_seconds{stream}         the interval of a running stream (none: stopped)
    ds_queue_depth{queue}                      messages waiting in the fetch and ingest queues
    ds_queue_workers{queue}                    workers consuming a queue (answered a broadcast)
    ds_beat_up                                 1 while beat holds its RedBeat lock
    ds_redis_up                                1 when the store and the broker answered

The workers are counted by the broadcast `/readyz` sends, so a scrape takes about
``READY_TIMEOUT_SECONDS``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime

import redis
from celery import Celery
from flask import Blueprint, Flask, Response, current_app
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector
from redis.exceptions import RedisClusterException

from app.extensions import Store, get_redis, get_store
from app.ops import health
from app.records import parse_time
from app.schedule import Schedules
from config.names import QUEUES

# kombu's Redis transport keeps priorities 3, 6 and 9 of a queue in lists beside its own.
PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")
SECONDS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)

BATCHES = Counter("ds_batches", "Batches that ended, by final status.", ["stream", "status"])
BATCH_SECONDS = Histogram("ds_batch_duration_seconds", "Start to publish of a batch.",
                          ["stream"], buckets=SECONDS)
BATCH_RECORDS = Histogram("ds_batch_records", "Records of a published batch.", ["stream"],
                          buckets=(0, 10, 100, 1_000, 10_000, 100_000, 1_000_000))
UPSTREAM = Counter("ds_upstream_requests", "Upstream responses by status or error kind.",
                   ["stream", "status"])
UPSTREAM_SECONDS = Histogram("ds_upstream_request_seconds", "Upstream request latency.",
                             ["stream"], buckets=SECONDS)
RETRIES = Counter("ds_upstream_retries", "Retried upstream attempts, by error kind.", ["kind"])
RATE_WAITS = Counter("ds_rate_limit_waits", "Waits for a stream's rate limit.", ["stream"])
RATE_WAIT_SECONDS = Counter("ds_rate_limit_wait_seconds", "Time waited for rate limits.",
                            ["stream"])


def observe_batch(stream: str, status: str, seconds: float | None = None,
                  records: int | None = None) -> None:
    """Count a batch that ended with `status`; time and size it when it was published."""
    BATCHES.labels(stream, status).inc()
    if seconds is not None:
        BATCH_SECONDS.labels(stream).observe(max(seconds, 0.0))
    if records is not None:
        BATCH_RECORDS.labels(stream).observe(records)


def observe_upstream(stream: str, status: int | str, seconds: float) -> None:
    """Count one upstream request by HTTP status (or error kind) and time it."""
    UPSTREAM.labels(stream or "-", str(status)).inc()
    UPSTREAM_SECONDS.labels(stream or "-").observe(seconds)


def observe_retry(kind: str | None) -> None:
    """Count one retried upstream attempt."""
    RETRIES.labels(kind or "unknown").inc()


def observe_rate_limit_wait(stream: str, seconds: float) -> None:
    """Count one wait for the stream's rate limit."""
    RATE_WAITS.labels(stream or "-").inc()
    RATE_WAIT_SECONDS.labels(stream or "-").inc(seconds)


class RedisCollector(Collector):
    """Freshness, version and interval (store), queue depths (broker), read at scrape time."""

    def __init__(self, store: Store, schedules: Schedules, broker: redis.Redis) -> None:
        self.store = store
        self.schedules = schedules
        self.broker = broker

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("ds_redis_up", "1 when the store and the broker answered.")
        try:
            metrics = list(self._from_redis())
        except (redis.RedisError, RedisClusterException):  # down, or failing over
            metrics = []
        up.add_metric([], 1 if metrics else 0)
        yield up
        yield from metrics

    def _from_redis(self) -> Iterator[Metric]:
        fresh = GaugeMetricFamily("ds_stream_freshness_seconds", "Seconds since the "
                                  "current version was published.", labels=["stream"])
        current = GaugeMetricFamily("ds_stream_current_version", "The version served.",
                                    labels=["stream"])
        interval = GaugeMetricFamily("ds_stream_interval_seconds", "The interval of a "
                                     "running stream.", labels=["stream"])
        now = datetime.now(UTC)
        reader = self.store.reader
        for name in self.store.definitions.names():
            state = self.schedules.describe(name)
            if state["state"] == "running":
                interval.add_metric([name], state["interval_seconds"])
            version = reader.current_version(name)
            if not version:
                continue
            current.add_metric([name], version)
            batch = reader.batch_or_none(name, version) or {}
            published = parse_time(batch.get("published_at") or batch.get("finished_at"))
            if published is not None:
                fresh.add_metric([name], (now - published).total_seconds())
        depth = GaugeMetricFamily("ds_queue_depth", "Messages waiting in a Celery queue.",
                                  labels=["queue"])
        with self.broker.pipeline(transaction=False) as pipe:
            for queue in QUEUES:
                for suffix in PRIORITY_SUFFIXES:
                    pipe.llen(queue + suffix)
            lengths = pipe.execute()
        for index, queue in enumerate(QUEUES):
            step = len(PRIORITY_SUFFIXES)
            depth.add_metric([queue], sum(lengths[index * step:(index + 1) * step]))
        yield from (fresh, current, interval, depth)


class ProcessCollector(Collector):
    """Signs of life of the other processes: workers per queue (they answer a broadcast
    within `timeout` seconds; no sample when the broadcast fails) and beat's lock."""

    def __init__(self, celery_app: Celery, connection: redis.Redis, timeout: float) -> None:
        self.celery_app = celery_app
        self.connection = connection
        self.timeout = timeout

    def collect(self) -> Iterator[Metric]:
        beat = GaugeMetricFamily("ds_beat_up", "1 while beat holds its RedBeat lock.")
        beat.add_metric([], 1 if health.beat_check(self.connection)["ok"] else 0)
        yield beat
        workers = GaugeMetricFamily("ds_queue_workers", "Workers consuming a queue.",
                                    labels=["queue"])
        try:
            found = health.consumers(self.celery_app, self.timeout)
        except Exception:  # the broker is down: ds_redis_up says so; no guess here
            return
        for queue, nodes in found.items():
            workers.add_metric([queue], len(nodes))
        yield workers


class _ThisProcess(Collector):
    """This process's own metrics (when there is no multi-process directory)."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def registry(store: Store, celery_app: Celery, timeout: float) -> CollectorRegistry:
    """Return the registry of one scrape: every process's metrics, Redis's, the processes'."""
    scrape = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(scrape)
    else:
        scrape.register(_ThisProcess())
    scrape.register(RedisCollector(store, Schedules(celery_app), get_redis()))
    scrape.register(ProcessCollector(celery_app, get_redis(), timeout))
    return scrape


def process_exited(pid: int) -> None:
    """Drop the live-gauge files of a dead process (gunicorn `child_exit`, Celery)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        mark_process_dead(pid)


bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def metrics() -> Response:
    """Return every metric in the Prometheus text format."""
    timeout = float(current_app.config.get("READY_TIMEOUT_SECONDS", 1.0))
    body = generate_latest(registry(get_store(), current_app.extensions["celery"], timeout))
    return Response(body, mimetype=CONTENT_TYPE_LATEST.split(";")[0],
                    headers={"Content-Type": CONTENT_TYPE_LATEST})


def _celery_child_exited(**_: object) -> None:
    process_exited(os.getpid())


def init_app(app: Flask) -> None:
    """Serve /metrics; have Celery pool children mark themselves dead when they exit."""
    from celery.signals import worker_process_shutdown

    app.register_blueprint(bp)
    worker_process_shutdown.connect(_celery_child_exited, weak=False,
                                    dispatch_uid="ds-metrics-child-exit")
