"""Read throughput and latency at 16 connections: GET /data?limit=100 against the bare
endpoint, both under the web process's gunicorn command line, with wrk (or, without wrk,
a bounded Python load generator). Loopback only; every run is bounded in time."""

from __future__ import annotations

import re
import shutil
import statistics
import subprocess
import threading
import time

import requests

from bench.env import World, wait_for
from devtools.procs import read_procfile
from devtools.redis_server import free_port

CONNECTIONS = 16
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def bare_command(port: int) -> str:
    """Return the web process's gunicorn command, serving the bare app on `port`."""
    web = read_procfile()["web"]
    gunicorn = web[web.index("exec gunicorn"):]
    gunicorn = gunicorn.replace("'app:create_app()'", "'bench.bare:create_app()'")
    return gunicorn.replace("${PORT:-8000}", str(port))


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip()).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def wrk(url: str, seconds: int) -> dict[str, float]:
    """Run wrk with 16 connections for `seconds`; return rps, p50 and p99 in ms."""
    out = subprocess.run(["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency",
                          "--timeout", "5s", url], capture_output=True, text=True,
                         timeout=seconds + 30, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"{errors.group(1)} failed responses from {url}")
    return {"rps": rps, "p50_ms": p50, "p99_ms": p99}


def pyload(url: str, seconds: int, cap: int = 1_000_000) -> dict[str, float]:
    """Load `url` from 16 threads for `seconds` (at most `cap` requests in all)."""
    latencies: list[float] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client() -> None:
        with requests.Session() as http:
            while time.monotonic() < deadline and len(latencies) < cap:
                began = time.perf_counter()
                http.get(url, timeout=5).raise_for_status()
                with lock:
                    latencies.append((time.perf_counter() - began) * 1000)

    threads = [threading.Thread(target=client) for _ in range(CONNECTIONS)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 10)
    cuts = statistics.quantiles(latencies, n=100)
    return {"rps": len(latencies) / (time.monotonic() - started), "p50_ms": cuts[49],
            "p99_ms": cuts[98]}


def load(url: str, seconds: int) -> dict[str, float]:
    return wrk(url, seconds) if shutil.which("wrk") else pyload(url, seconds)


def compare(world: World, stream: str, seconds: int, rounds: int = 2) -> dict[str, float]:
    """Alternate ours and bare `rounds` times; return the mean of each."""
    system = world.system
    assert system is not None
    version = int(world.redis.get(f"ds:{{{stream}}}:current") or 0)
    port = free_port()
    world.start_proc("bare", bare_command(port), BENCH_KEY=f"ds:{{{stream}}}:b:{version}:rec")
    bare_url = f"http://127.0.0.1:{port}/bare"
    wait_for(lambda: _ok(bare_url), 30, 0.1, "bare endpoint")
    ours_url = system.api(f"/streams/{stream}/data?limit=100")
    assert len(requests.get(ours_url, timeout=5).json()["records"]) == 100
    assert len(requests.get(bare_url, timeout=5).json()) == 100
    runs: dict[str, list[dict[str, float]]] = {"ours": [], "bare": []}
    for _ in range(rounds):
        runs["bare"].append(load(bare_url, seconds))
        runs["ours"].append(load(ours_url, seconds))
    result = {f"{side}_{metric}": statistics.fmean(run[metric] for run in rows)
              for side, rows in runs.items() for metric in ("rps", "p50_ms", "p99_ms")}
    result["rps_ratio"] = result["ours_rps"] / result["bare_rps"]
    result["p99_ratio"] = result["ours_p99_ms"] / result["bare_p99_ms"]
    return result


def _ok(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).ok
    except requests.RequestException:
        return False
