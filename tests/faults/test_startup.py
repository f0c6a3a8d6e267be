"""Inconsistent limits refuse to start: the real Procfile processes exit, saying why."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from devtools.redis_server import free_port
from devtools.system import System
from tests.faults.conftest import ROOT, log_text
from tests.support.waiting import wait_for

pytestmark = pytest.mark.faults


def test_processes_refuse_inconsistent_limits_with_a_clear_message() -> None:
    log_dir = ROOT / "test-output" / "faults" / "startup"
    shutil.rmtree(log_dir, ignore_errors=True)
    # No Redis is needed: the settings are checked before anything connects.
    system = System(f"redis://127.0.0.1:{free_port()}/0", Path(log_dir),
                    LEASE_TTL_SECONDS="10", LEASE_RENEW_SECONDS="5")
    try:
        for proc in ("worker", "ingest", "beat", "web"):
            system.start(proc)
        for proc in ("worker", "ingest", "beat", "web"):
            wait_for(lambda p=proc: not system.procs[p].running, timeout=60,
                     what=f"{proc} to exit")
            process = system.procs[proc].process
            assert process is not None and process.returncode != 0
            text = log_text(system, proc)
            assert "data-streams refuses to start: inconsistent settings" in text, text[-2000:]
            assert "LEASE_RENEW_SECONDS (5) must be at least 1 and at most a third of " \
                   "LEASE_TTL_SECONDS (10)" in text
    finally:
        system.stop_all()
