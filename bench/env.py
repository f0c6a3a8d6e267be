"""The benchmark's world: the machine's description, a real redis-server, the demo upstream
under gunicorn and the data-streams processes of the Procfile, all on 127.0.0.1."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
import requests

from devtools.procs import ROOT, Proc
from devtools.redis_server import RedisServer, find_binary, free_port
from devtools.system import System

WORK_DIR = ROOT / "var" / "bench"
PAGE_SIZE = 1000
# The benchmark Redis's maxmemory, in bytes: room for the 5M-record stream of `scale`
# (its version, its staging and its queued pages at once).
REDIS_MAXMEMORY = 12 * 2**30


def wait_for(check: Callable[[], Any], timeout: float, interval: float = 0.01,
             what: str = "condition") -> Any:
    """Poll `check` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached after {timeout}s")
        time.sleep(interval)


def machine(connection: redis.Redis) -> dict[str, str]:
    """Describe the machine: cores, CPU model, memory, Python and Redis versions."""
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = next((int(line.split()[1]) for line in Path("/proc/meminfo").read_text()
                   .splitlines() if line.startswith("MemTotal")), 0)
    wrk = shutil.which("wrk")
    return {"nproc": str(os.cpu_count()), "cpu": cpu, "memory": f"{mem_kb / 2**20:.1f} GiB",
            "os": f"{platform.system()} {platform.release()}",
            "python": platform.python_version(),
            "redis": str(connection.info("server")["redis_version"]),
            "load generator": "wrk" if wrk else "python (wrk not installed)"}


class Upstream:
    """The demo upstream under gunicorn (threads, so parallel fetches overlap their delay)."""

    def __init__(self, log_dir: Path, threads: int = 16) -> None:
        self.port = free_port()
        command = (f"exec gunicorn --workers 1 --threads {threads} --worker-class gthread "
                   f"--bind 127.0.0.1:{self.port} 'demo:create_app()'")
        self.proc = Proc("upstream", {}, log_dir, command=command)

    def url(self, total: int, delay_ms: int = 0) -> str:
        return (f"http://127.0.0.1:{self.port}/items?page=1&page_size={PAGE_SIZE}"
                f"&total={total}&delay_ms={delay_ms}")

    def start(self) -> Upstream:
        self.proc.start()
        wait_for(self._up, 30, 0.1, "upstream")
        return self

    def _up(self) -> bool:
        try:
            return requests.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).ok
        except requests.RequestException:
            return False


class World:
    """Owns every process the benchmarks start; `close` stops them all."""

    def __init__(self) -> None:
        shutil.rmtree(WORK_DIR, ignore_errors=True)
        WORK_DIR.mkdir(parents=True)
        self.redis_server = RedisServer(WORK_DIR / "redis",
                                        maxmemory=REDIS_MAXMEMORY).start()
        self.redis = redis.Redis.from_url(self.redis_server.url, decode_responses=True)
        self.upstream = Upstream(WORK_DIR / "logs").start()
        self.system: System | None = None
        self.extra: list[Proc] = []

    def start_system(self, **env: str) -> System:
        """(Re)start web, ingest, worker and beat with `env` overrides."""
        self.stop_system()
        self.system = System(self.redis_server.url, WORK_DIR / "logs", **env).start_all()
        return self.system

    def stop_system(self) -> None:
        if self.system is not None:
            self.system.stop_all()
            self.system = None

    def start_proc(self, name: str, command: str, **env: str) -> Proc:
        """Start an extra process (a bare endpoint) that `close` stops."""
        proc = Proc(name, {"REDIS_URL": self.redis_server.url, **env}, WORK_DIR / "logs",
                    command=command).start()
        self.extra.append(proc)
        return proc

    def forget(self, pattern: str) -> None:
        """Delete every key matching `pattern` (between measurements)."""
        for key in self.redis.scan_iter(pattern, count=10_000):
            self.redis.unlink(key)

    def close(self) -> None:
        self.stop_system()
        for proc in [*self.extra, self.upstream.proc]:
            proc.stop()
        self.redis_server.stop()


def versions() -> str:
    """Return the redis-server binary used (for the report)."""
    out = subprocess.run([find_binary(), "--version"], capture_output=True, text=True,
                         check=False)
    return out.stdout.strip() or sys.version
