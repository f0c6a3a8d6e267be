"""`make test`: lint, type-check, then every test group (unit, integration, faults).

pytest's fixtures start what the tests need (redis-server, Celery processes, upstreams);
this runner only sequences the checks and fails on the first red one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PACKAGES = ["app", "tasks", "config", "devtools", "demo"]
# Debian packages of the browser test (tests/e2e); without them it skips with a reason.
BROWSER_PACKAGES = ["chromium", "chromium-driver"]


# Longest a browser install step may take, in seconds, before the browser test skips.
INSTALL_TIMEOUT = 600


def run(title: str, args: list[str], env: dict[str, str] | None = None,
        timeout: float | None = None) -> int:
    print(f"\n=== {title}: {' '.join(args)}", flush=True)
    try:
        return subprocess.call(args, cwd=ROOT, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        print(f"{title}: gave up after {timeout} s", flush=True)
        return 124


def ensure_chromium() -> None:
    """Install Debian's Chromium for the browser test when missing (as root, best effort)."""
    if Path("/usr/bin/chromium").exists() and Path("/usr/bin/chromedriver").exists():
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        print("\n=== chromium: not installed and cannot install it (needs root and apt-get); "
              "the browser test will skip. Install: apt-get install -y chromium "
              "chromium-driver", flush=True)
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for args in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq",
                                                *BROWSER_PACKAGES]):
        if run("chromium for the browser test", args, env, INSTALL_TIMEOUT) != 0:
            print("chromium install failed: the browser test will skip", flush=True)
            return


def main(argv: list[str]) -> int:
    """Run each check in order; return the first non-zero exit code."""
    ensure_chromium()
    steps = [
        ("lint", [str(BIN / "ruff"), "check", "."]),
        ("types", [str(BIN / "mypy"), *PACKAGES]),
        ("tests", [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *argv]),
    ]
    for title, args in steps:
        code = run(title, args)
        if code != 0:
            print(f"\n{title} failed (exit {code})", flush=True)
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
