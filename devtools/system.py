"""The whole system as real processes (web, ingest, worker, beat) against its Redis.

Used by the integration and fault tests and by the benchmarks: each process is started
from its Procfile line, and `wait_ready` polls each one's own sign of life with a deadline
(web answers HTTP, Celery workers answer a control ping, beat holds its RedBeat lock).
`redis_url` is the broker's (REDIS_URL); a ``STORE_URL`` in `env` puts the batch store
elsewhere (a Redis Cluster). `redis` is a client of the broker's Redis, `store` of the
store's.
"""

from __future__ import annotations

import shutil
import socket
import time
from pathlib import Path

import redis
import requests
from celery import Celery
from kombu.exceptions import OperationalError

from app.store.connection import connect
from config.redis_url import broker_url, celery_redis_settings, parse
from devtools.procs import Proc
from devtools.redis_server import free_port

BEAT_LOCK_KEY = "{redbeat}::lock"


def metrics_dir(path: Path) -> Path:
    """Return an empty directory for prometheus-client's multi-process files."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


class System:
    """Real data-streams processes; `api(path)` builds URLs of the web process."""

    def __init__(self, redis_url: str, log_dir: Path, **env: str) -> None:
        self.redis_url = redis_url
        self.log_dir = log_dir
        self.port = free_port()
        self.env = {"REDIS_URL": redis_url, "PORT": str(self.port), "STREAMS_FILE": "",
                    "BEAT_MAX_LOOP_INTERVAL": "1", "ALLOWED_SOURCE_HOSTS": "127.0.0.1",
                    "PYTHONUNBUFFERED": "1",
                    "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir(log_dir / f"metrics-{self.port}")),
                    **env}
        self.procs: dict[str, Proc] = {}
        self.redis = connect(broker_url(redis_url))
        store_url = self.env.get("STORE_URL") or redis_url
        self.store = (self.redis if store_url == redis_url
                      else connect(parse(store_url, "STORE_URL")))
        broker = celery_redis_settings(broker_url(redis_url), {})
        self.celery = Celery(broker=broker["broker_url"])
        self.celery.conf.broker_transport_options = broker["broker_transport_options"]
        self.http = requests.Session()

    def api(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self, name: str, **env: str) -> Proc:
        """Start a process: a Procfile name, or "worker-2" for a second worker."""
        extra = dict(env)
        if name.startswith("worker-"):
            extra.setdefault("WORKER_NAME", name)
        if name.startswith("ingest-"):
            extra.setdefault("INGEST_NAME", name)
        proc = Proc(name, {**self.env, **extra}, self.log_dir).start()
        self.procs[name] = proc
        return proc

    def start_all(self, names: tuple[str, ...] = ("web", "ingest", "worker", "beat"),
                  timeout: float = 60.0) -> System:
        for name in names:
            self.start(name)
        self.wait_ready(names, timeout)
        return self

    def wait_ready(self, names: tuple[str, ...], timeout: float = 60.0) -> None:
        """Poll every named process until it shows it is up, or fail after `timeout`."""
        deadline = time.monotonic() + timeout
        pending = list(names)
        while pending:
            pending = [name for name in pending if not self._ready(name)]
            for name in pending:
                proc = self.procs[name]
                if not proc.running:
                    raise RuntimeError(f"{name} exited:\n{proc.log_tail()}")
            if pending and time.monotonic() > deadline:
                tails = "\n".join(f"--- {n}\n{self.procs[n].log_tail()}" for n in pending)
                raise TimeoutError(f"not ready after {timeout}s: {pending}\n{tails}")
            if pending:
                time.sleep(0.2)

    def _ready(self, name: str) -> bool:
        if name.startswith("web"):
            try:
                return self.http.get(self.api("/healthz"), timeout=1).status_code == 200
            except requests.RequestException:
                return False
        if name.startswith("beat"):
            return bool(self.redis.exists(BEAT_LOCK_KEY))
        if name.startswith(("worker", "ingest")):
            node = f"{name if '-' in name else self._node(name)}@{socket.gethostname()}"
            try:
                return bool(self.celery.control.ping(destination=[node], timeout=0.5))
            except (OSError, redis.RedisError, OperationalError):  # the broker failing over
                return False
        return True

    @staticmethod
    def _node(name: str) -> str:
        return {"worker": "fetch", "ingest": "ingest"}[name]

    def stop_all(self) -> None:
        for proc in self.procs.values():
            proc.stop()
        self.http.close()
