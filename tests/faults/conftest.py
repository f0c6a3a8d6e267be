"""Fixtures of the fault tests: each module runs its OWN redis-server and processes.

Killing a worker or restarting Redis must never disturb another test, so nothing here is
session-scoped (the fake upstream is: tests/conftest.py). The time limits, grace period
and the broker's visibility timeout are shrunk through the environment (the same variables
an operator sets) so that those timeouts pass in seconds; the tests that shrink one also
check that the defaults keep the same relation (`config.settings.timing`). The batch lease
(LEASE_TTL_SECONDS, LEASE_RENEW_SECONDS) stays at its defaults: what a user waits for after
a worker dies is shown as it is.
"""

from __future__ import annotations

import itertools
import re
import shutil
from pathlib import Path

import pytest

from config import defaults
from devtools.redis_server import RedisServer
from devtools.system import System

ROOT = Path(__file__).resolve().parents[2]
_names = itertools.count(1)

# Seconds. soft < hard < visibility; restores sweep every second; staging lives 21 s.
FAULT_ENV = {
    "FETCH_SOFT_TIME_LIMIT": "5",
    "FETCH_HARD_TIME_LIMIT": "7",
    "VISIBILITY_TIMEOUT": "10",
    "GRACE_SECONDS": "3",
    "BEAT_LOCK_TIMEOUT": "5",
    "BEAT_MAX_LOOP_INTERVAL": "1",
    "FETCH_CONCURRENCY": "1",
    "INGEST_CONCURRENCY": "2",
}

# Every limit FAULT_ENV shrinks, at its default: for the modules that show the defaults.
DEFAULT_LIMITS = {name: str(getattr(defaults, name)) for name in (
    "FETCH_SOFT_TIME_LIMIT", "FETCH_HARD_TIME_LIMIT", "VISIBILITY_TIMEOUT", "GRACE_SECONDS",
    "BEAT_LOCK_TIMEOUT", "BEAT_MAX_LOOP_INTERVAL")}


def launch(tmp: Path, module: str, names: tuple[str, ...] = ("web", "ingest", "worker", "beat"),
           **env: str) -> tuple[RedisServer, System]:
    """Start a redis-server and the named processes of one test module."""
    server = RedisServer(tmp / "redis").start()
    log_dir = ROOT / "test-output" / "faults" / module
    shutil.rmtree(log_dir, ignore_errors=True)
    system = System(server.url, log_dir, **{**FAULT_ENV, **env})
    try:
        system.start_all(names)
    except BaseException:
        system.stop_all()
        server.stop(kill=True)
        raise
    return server, system


@pytest.fixture
def name(request: pytest.FixtureRequest) -> str:
    """Return a stream name unique to this test."""
    base = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40]
    return f"{base}-{next(_names)}"


def catalogue(count: int, label: str) -> list[dict[str, object]]:
    """Return `count` records labelled `label`."""
    return [{"id": i, "label": label, "n": i * 3} for i in range(1, count + 1)]


def log_text(system: System, proc: str) -> str:
    """Return the whole log of one process."""
    path = system.procs[proc].log_path
    return path.read_text(errors="replace") if path.exists() else ""
