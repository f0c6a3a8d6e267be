"""Procfile processes as real child processes, for tests, fault tests and benchmarks.

Each process runs its Procfile line through bash in its own process group, so `kill()`
(SIGKILL) and `stop()` (SIGTERM) reach every process it spawned (Celery's pool children,
gunicorn's workers). Output goes to a log file per process.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def read_procfile(path: Path = ROOT / "Procfile") -> dict[str, str]:
    """Return {process name: command} of a Procfile."""
    commands = {}
    for line in path.read_text().splitlines():
        name, sep, command = line.partition(":")
        if sep and name.strip() and not name.startswith("#"):
            commands[name.strip()] = command.strip()
    return commands


class Proc:
    """One Procfile line running as a process group."""

    def __init__(self, name: str, env: dict[str, str], log_dir: Path,
                 command: str | None = None) -> None:
        self.name = name
        self.command = command or read_procfile()[name.split("-")[0]]
        self.env = {**os.environ, **env,
                    "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
        self.log_path = log_dir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Proc:
        """Start the process (its log file is appended to)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(["bash", "-c", self.command], cwd=ROOT, env=self.env,
                                        stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        log.close()
        return self

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _signal(self, signum: int) -> None:
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signum)

    def kill(self) -> None:
        """SIGKILL the whole process group at once, as a crash would."""
        self._signal(signal.SIGKILL)
        if self.process is not None:
            self.process.wait(timeout=10)

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM the group, then SIGKILL what is left after `timeout` seconds."""
        if not self.running:
            self._signal(signal.SIGKILL)
            return
        self._signal(signal.SIGTERM)
        try:
            assert self.process is not None
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        self._signal(signal.SIGKILL)

    def log_tail(self, lines: int = 40) -> str:
        """Return the last lines of the process's log (for failure messages)."""
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
