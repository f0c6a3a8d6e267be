"""Operations on real processes with tokens set: auth, metrics after a batch, JSON logs
without secrets, and /readyz turning 503 when the fetch worker stops.

This module starts its own System (own Redis, own processes) so that stopping its worker
cannot disturb the other integration tests.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from devtools.redis_server import RedisServer
from devtools.system import System
from tests.support.upstream import Upstream
from tests.support.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
API_TOKEN = "it-api-token-5f2c9e"
READ_TOKEN = "it-read-token-7a1b3d"
UPSTREAM_KEY = "it-upstream-key-93e1c0"

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def ops(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    server = RedisServer(tmp_path_factory.mktemp("redis-ops")).start()
    log_dir = ROOT / "test-output" / "operations"
    for old in log_dir.glob("*.log"):
        old.unlink()
    system = System(server.url, log_dir, API_TOKEN=API_TOKEN, READ_TOKEN=READ_TOKEN,
                    DS_SECRET_UPSTREAM_KEY=UPSTREAM_KEY, READY_TIMEOUT_SECONDS="1")
    try:
        system.start_all()
        yield system
    finally:
        system.stop_all()
        server.stop()


def call(system: System, method: str, path: str, token: str | None = API_TOKEN,
         **kwargs: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.request(method, system.api(path), headers=headers, timeout=10, **kwargs)


def sample(text: str, name: str, **labels: str) -> float:
    """Return one sample of Prometheus text (0 when absent)."""
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    prefix = f"{name}{{{wanted}}} " if labels else f"{name} "
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def scrape(system: System) -> str:
    response = call(system, "GET", "/metrics", token=READ_TOKEN)
    assert response.status_code == 200, response.text
    return response.text


def run_one_batch(system: System, upstream: Upstream, name: str) -> int:
    upstream.feed(name, [{"id": i} for i in range(1, 26)], page_size=10)
    body = {"source": {"url": upstream.url(name), "records_path": "data",
                       "pagination": {"type": "next_url", "next_url_path": "next"},
                       "auth": {"type": "api_key", "in": "query", "name": "api_key",
                                "value_env": "DS_SECRET_UPSTREAM_KEY"}},
            "key": "id"}
    assert call(system, "PUT", f"/streams/{name}", json=body).status_code == 201
    assert call(system, "POST", f"/streams/{name}/start").status_code == 200
    return wait_for(lambda: call(system, "GET", f"/streams/{name}", token=READ_TOKEN
                                 ).json()["current_version"], timeout=30, what="a batch")


def test_tokens_on_the_real_web_process(ops: System) -> None:
    body = {"source": {"url": "http://127.0.0.1:9/x"}}
    assert call(ops, "PUT", "/streams/auth-a", token=None, json=body).status_code == 401
    assert call(ops, "PUT", "/streams/auth-a", token=READ_TOKEN, json=body).status_code == 403
    assert call(ops, "PUT", "/streams/auth-a", json=body).status_code == 201
    assert call(ops, "GET", "/streams/auth-a", token=None).status_code == 401
    assert call(ops, "GET", "/streams/auth-a", token="nope").status_code == 403
    assert call(ops, "GET", "/streams/auth-a", token=READ_TOKEN).status_code == 200
    assert call(ops, "GET", "/healthz", token=None).status_code == 200


def test_metrics_move_after_a_batch(ops: System, upstream: Upstream) -> None:
    name = "metrics-a"
    before = scrape(ops)
    assert sample(before, "ds_batches_total", stream=name, status="published") == 0
    assert sample(before, "ds_redis_up") == 1
    assert "ds_queue_depth{queue=\"ingest\"}" in before
    version = run_one_batch(ops, upstream, name)
    # The ingest consumer counts the batch just after it publishes: poll the scrape.

    def counted() -> str | None:
        text = scrape(ops)
        return text if sample(text, "ds_batches_total", stream=name,
                              status="published") >= 1 else None

    after = wait_for(counted, what="published batch counted")
    assert sample(after, "ds_upstream_requests_total", stream=name, status="200") >= 3
    assert sample(after, "ds_upstream_request_seconds_count", stream=name) >= 3
    assert sample(after, "ds_batch_records_count", stream=name) >= 1
    assert sample(after, "ds_batch_records_sum", stream=name) == 25
    assert sample(after, "ds_batch_duration_seconds_count", stream=name) >= 1
    assert sample(after, "ds_stream_current_version", stream=name) == version
    assert 0 <= sample(after, "ds_stream_freshness_seconds", stream=name) < 120
    call(ops, "POST", f"/streams/{name}/stop")


def test_logs_are_json_lines_with_batch_context_and_no_secrets(ops: System,
                                                               upstream: Upstream) -> None:
    name = "logs-a"
    version = run_one_batch(ops, upstream, name)
    call(ops, "GET", f"/streams/{name}?token={READ_TOKEN}", token=READ_TOKEN)
    call(ops, "POST", f"/streams/{name}/stop")

    def fetched() -> list[dict[str, Any]]:
        return [line for line in json_lines(ops, "worker")
                if line.get("message", "").startswith("batch fetched")
                and line.get("stream") == name]

    [line] = wait_for(fetched, what="the worker's 'batch fetched' line")
    assert line["version"] == version and line["level"] == "INFO" and line.get("task_id")
    settled = [line for line in json_lines(ops, "ingest")
               if line.get("stream") == name and line.get("version") == version]
    assert settled and all(line.get("task_id") for line in settled)
    assert len([line for line in settled if line["level"] == "INFO"]) <= 6
    broken = {"source": {"url": upstream.url(name), "records_path": "missing"}}
    assert call(ops, "PUT", "/streams/logs-b", json=broken).status_code == 201
    assert call(ops, "POST", "/streams/logs-b/start").status_code == 200
    [failed] = wait_for(lambda: [line for line in json_lines(ops, "worker")
                                 if line.get("stream") == "logs-b"
                                 and line["message"].startswith("batch failed")],
                        what="the worker's 'batch failed' line")
    assert (failed["level"], failed["page"], failed["kind"]) == ("WARNING", 1, "records_path")
    call(ops, "POST", "/streams/logs-b/stop")
    for proc in ("web", "worker", "ingest", "beat"):
        text = (ops.log_dir / f"{proc}.log").read_text(errors="replace")
        for secret in (API_TOKEN, READ_TOKEN, UPSTREAM_KEY):
            assert secret not in text, f"{secret} leaked into {proc}.log"


def json_lines(system: System, proc: str) -> list[dict[str, Any]]:
    """Return the JSON lines of a process's log (other output, e.g. banners, skipped)."""
    lines = []
    for raw in (system.log_dir / f"{proc}.log").read_text(errors="replace").splitlines():
        if raw.startswith("{"):
            lines.append(json.loads(raw))
    return lines


def test_readyz_is_503_when_the_fetch_worker_is_down(ops: System) -> None:
    ready = call(ops, "GET", "/readyz", token=None)
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"]["beat"]["ok"] is True
    ops.procs["worker"].stop()
    down = wait_for(lambda: (r := call(ops, "GET", "/readyz", token=None)).status_code == 503
                    and r.json(), timeout=20, what="readyz 503")
    checks = down["checks"]
    assert checks["workers"]["ok"] is False and checks["workers"]["queues"]["fetch"] == 0
    assert checks["workers"]["queues"]["ingest"] == 1 and checks["redis"]["ok"] is True
