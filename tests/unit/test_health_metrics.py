"""Probes and metrics on fakeredis: /healthz, /readyz's checks, /metrics's families."""

from __future__ import annotations

import threading
import time
from typing import Any

import fakeredis
import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.extensions import Store
from app.ops import health, metrics
from app.schedule import Schedules
from config.streams import StreamDefinition
from tests.support.seed import Seeder


def checked(client: FlaskClient, app: Any) -> None:
    """Let /healthz's own probe run its first check."""
    client.get("/healthz")
    app.extensions["nodes"].thread.join(5)


def test_healthz_never_starts_a_readiness_check(
        client: FlaskClient, app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    workers(monkeypatch, {"fetch": [], "ingest": []})  # the workers are not up yet
    checked(client, app)
    assert app.extensions["readyz"].thread is None
    workers(monkeypatch, {"fetch": ["w1"], "ingest": ["w1"]})
    assert client.get("/readyz").get_json()["checks"]["workers"]["ok"] is True


def test_healthz_lists_every_redis_server_from_the_probe_cache(
        client: FlaskClient, app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    workers(monkeypatch, {"fetch": [], "ingest": []})
    first = client.get("/healthz")  # before any check: alive, Redis not yet known
    assert first.status_code == 200 and first.get_json()["status"] in ("unknown", "ok")
    app.extensions["nodes"].thread.join(5)
    body = client.get("/healthz").get_json()
    assert body["status"] == "ok" and body["failing"] == []
    [(name, node)] = body["nodes"]["redis"].items()
    # fakeredis refuses CONFIG GET, as a managed Redis may: the policy is unknown, not bad.
    assert node == {"role": "single", "reachable": True, "eviction_policy": None,
                    "evicts_keys": False}
    assert name in client.get("/readyz").get_data(as_text=True)  # no more than /readyz tells


def test_healthz_is_200_and_degraded_naming_each_failing_server(
        client: FlaskClient, app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    servers = {"10.0.0.1:7000": {"role": "master", "ok": True, "eviction_policy": "noeviction"},
               "10.0.0.2:7001": {"role": "replica", "ok": False, "eviction_policy": None},
               "10.0.0.3:7002": {"role": "failed", "ok": False, "eviction_policy": None},
               "10.0.0.4:7003": {"role": "master", "ok": True,
                                 "eviction_policy": "allkeys-lru"}}
    monkeypatch.setattr(health, "redis_check",
                        lambda connection: {"ok": True, "servers": servers})
    checked(client, app)
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "degraded"
    assert body["failing"] == ["redis replica 10.0.0.2:7001: unreachable",
                               "redis failed 10.0.0.3:7002: unreachable",
                               "redis master 10.0.0.4:7003: evicts (allkeys-lru)"]
    assert body["nodes"]["redis"]["10.0.0.4:7003"]["evicts_keys"] is True


def test_healthz_is_200_when_no_redis_answers(client: FlaskClient, app: Any,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(health, "redis_check",
                        lambda connection: {"ok": False, "error": "ConnectionError"})
    checked(client, app)
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json()["failing"] == ["redis: ConnectionError"]


def test_healthz_never_waits_for_a_hung_check(
        client: FlaskClient, app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()
    monkeypatch.setattr(health, "redis_check",
                        lambda connection: {"ok": release.wait(30) and False})
    try:
        started = time.monotonic()
        answers = [client.get("/healthz") for _ in range(20)]
        waited = time.monotonic() - started
    finally:
        release.set()
    assert {answer.status_code for answer in answers} == {200} and waited < 1
    assert answers[-1].get_json()["status"] == "unknown"


def workers(monkeypatch: pytest.MonkeyPatch, found: dict[str, list[str]]) -> None:
    monkeypatch.setattr(health, "consumers", lambda celery_app, timeout: found)


def test_readyz_ready(client: FlaskClient, redis: fakeredis.FakeRedis,
                      monkeypatch: pytest.MonkeyPatch) -> None:
    workers(monkeypatch, {"fetch": ["fetch@h"], "ingest": ["ingest@h"]})
    redis.set(health.BEAT_LOCK_KEY, "x", ex=60)
    response = client.get("/readyz")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["status"] == "ready"


@pytest.mark.parametrize(("found", "beat", "failed"), [
    ({"fetch": [], "ingest": ["ingest@h"]}, True, "workers"),
    ({"fetch": ["fetch@h"], "ingest": []}, True, "workers"),
    ({"fetch": ["fetch@h"], "ingest": ["ingest@h"]}, False, "beat")])
def test_readyz_not_ready(client: FlaskClient, redis: fakeredis.FakeRedis,
                          monkeypatch: pytest.MonkeyPatch, found: dict[str, list[str]],
                          beat: bool, failed: str) -> None:
    workers(monkeypatch, found)
    if beat:
        redis.set(health.BEAT_LOCK_KEY, "x", ex=60)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"][failed]["ok"] is False


def test_readyz_redis_down(client: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(health, "redis_check", lambda connection: {"ok": False})
    response = client.get("/readyz")
    assert response.status_code == 503
    assert set(response.get_json()["checks"]) == {"redis"}


def test_readyz_answers_from_a_cache_and_names_no_host(
        client: FlaskClient, redis: fakeredis.FakeRedis, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def counted(celery_app: Any, timeout: float) -> dict[str, list[str]]:
        calls.append(timeout)
        return {"fetch": ["fetch@secret-host"], "ingest": ["ingest@secret-host", "i2@h2"]}

    monkeypatch.setattr(health, "consumers", counted)
    redis.set(health.BEAT_LOCK_KEY, "x", ex=60)
    answers = [client.get("/readyz") for _ in range(50)]
    # One check, with the app's READY_TIMEOUT_SECONDS, for 50 callers within the cache life.
    assert calls == [client.application.config["READY_TIMEOUT_SECONDS"]]
    assert {answer.get_json()["checked_at"] for answer in answers} == {
        answers[0].get_json()["checked_at"]}
    body = answers[0].get_data(as_text=True)
    assert "secret-host" not in body and "@" not in body
    assert answers[0].get_json()["checks"]["workers"]["queues"] == {"fetch": 1, "ingest": 2}


def test_readyz_is_checked_again_once_its_answer_is_old(
        client: FlaskClient, app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    workers(monkeypatch, {"fetch": ["f@h"], "ingest": ["i@h"]})
    probe = app.extensions["readyz"]
    assert client.get("/readyz").status_code == 503  # beat lock missing
    probe.checked -= probe.ttl  # as if READY_CACHE_SECONDS had passed
    app.extensions["redis"].set(health.BEAT_LOCK_KEY, "x", ex=60)
    assert client.get("/readyz").status_code == 200


def test_a_hung_check_holds_no_caller_past_its_bound(
        client: FlaskClient, app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()

    def hung(celery_app: Any, timeout: float) -> dict[str, list[str]]:
        release.wait(30)
        return {"fetch": [], "ingest": []}

    monkeypatch.setattr(health, "consumers", hung)
    app.extensions["readyz"].timeout = 0.2  # bound: 0.2 s + WAIT_MARGIN
    try:
        started = time.monotonic()
        first = client.get("/readyz")
        waited = time.monotonic() - started
        started = time.monotonic()
        second = client.get("/readyz")
        again = time.monotonic() - started
    finally:
        release.set()
    assert first.status_code == 503 and "did not finish" in first.get_data(as_text=True)
    assert 0.2 <= waited < 0.2 + health.WAIT_MARGIN + 0.5
    assert second.status_code == 503 and again < 0.1  # the bound is per check, not per call


def test_broker_error_is_not_ready() -> None:
    class Broken:
        @property
        def control(self) -> Any:
            raise ConnectionError("broker gone")

    assert health.workers_check(Broken(), 0.1)["ok"] is False


def sample(text: str, name: str, **labels: str) -> float | None:
    """Return the value of one sample in Prometheus text, or None."""
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    prefix = f"{name}{{{wanted}}} " if labels else f"{name} "
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_metrics_families_and_redis_gauges(client: FlaskClient, seed: Seeder,
                                           redis: fakeredis.FakeRedis) -> None:
    seed.publish("m1", [{"id": 1}])  # the ingest consumer counts and times it
    redis.rpush("ingest", "a", "b")
    metrics.observe_upstream("m1", 200, 0.05)
    text = client.get("/metrics").get_data(as_text=True)
    assert sample(text, "ds_redis_up") == 1
    assert sample(text, "ds_queue_depth", queue="ingest") == 2
    assert sample(text, "ds_queue_depth", queue="fetch") == 0
    assert (sample(text, "ds_upstream_requests_total", stream="m1", status="200") or 0) >= 1
    assert (sample(text, "ds_batches_total", stream="m1", status="published") or 0) >= 1
    assert "ds_batch_duration_seconds_bucket" in text
    assert "ds_rate_limit_waits_total" in text or "ds_rate_limit_waits" in text


def test_freshness_of_a_published_stream(client: FlaskClient, store: Store, seed: Seeder,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    version = seed.publish("f1", [{"id": 1}])
    monkeypatch.setattr(store.definitions, "names", lambda: ["f1"])
    text = client.get("/metrics").get_data(as_text=True)
    age = sample(text, "ds_stream_freshness_seconds", stream="f1")
    assert age is not None and 0 <= age < 60
    assert sample(text, "ds_stream_current_version", stream="f1") == version


def test_interval_of_running_streams_workers_and_beat(
        app: Flask, client: FlaskClient, store: Store, redis: fakeredis.FakeRedis,
        monkeypatch: pytest.MonkeyPatch) -> None:
    workers(monkeypatch, {"fetch": ["fetch@h"], "ingest": []})
    redis.set(health.BEAT_LOCK_KEY, "x", ex=60)
    for name in ("run1", "idle1"):
        store.definitions.put(name, StreamDefinition.model_validate(
            {"source": {"url": "http://127.0.0.1:9/x"}}))
    Schedules(app.extensions["celery"]).save("run1", 30)
    text = client.get("/metrics").get_data(as_text=True)
    assert sample(text, "ds_stream_interval_seconds", stream="run1") == 30
    assert sample(text, "ds_stream_interval_seconds", stream="idle1") is None  # stopped
    assert sample(text, "ds_queue_workers", queue="fetch") == 1
    assert sample(text, "ds_queue_workers", queue="ingest") == 0
    assert sample(text, "ds_beat_up") == 1


def test_no_worker_count_when_the_broadcast_fails(client: FlaskClient,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    def broker_down(celery_app: Any, timeout: float) -> dict[str, list[str]]:
        raise ConnectionError("broker gone")

    monkeypatch.setattr(health, "consumers", broker_down)
    text = client.get("/metrics").get_data(as_text=True)
    assert "ds_queue_workers{" not in text  # unknown is not zero: no NoWorker alert
    assert sample(text, "ds_beat_up") == 0
    assert sample(text, "ds_redis_up") == 1
