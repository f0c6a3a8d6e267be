"""`make test`: lint, type-check, the alert rules, then every test group (unit, integration,
faults, browser).

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
PACKAGES = ["app", "tasks", "config", "devtools", "demo", "dscli"]
# Debian packages of the browser test (tests/e2e); without them it skips with a reason.
BROWSER_PACKAGES = ["chromium", "chromium-driver"]
# Debian's prometheus ships promtool, which checks and unit-tests the alert rules.
PROMTOOL_PACKAGES = ["prometheus"]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
ALERT_TESTS = ROOT / "deploy" / "prometheus" / "alerts.test.yml"


# Longest one apt-get step may take, in seconds.
INSTALL_TIMEOUT = 600


def run(title: str, args: list[str], env: dict[str, str] | None = None,
        timeout: float | None = None) -> int:
    print(f"\n=== {title}: {' '.join(args)}", flush=True)
    try:
        return subprocess.call(args, cwd=ROOT, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        print(f"{title}: gave up after {timeout} s", flush=True)
        return 124


class Apt:
    """Installs Debian packages as root: `apt-get update` once per run, each step bounded."""

    def __init__(self) -> None:
        self.updated = False

    @staticmethod
    def usable() -> bool:
        return os.geteuid() == 0 and shutil.which("apt-get") is not None

    def install(self, title: str, packages: list[str], *extra: str) -> bool:
        """Install `packages`; return False (having said why) when that failed."""
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        if not self.updated:
            if run(title, ["apt-get", "update", "-qq"], env, INSTALL_TIMEOUT) != 0:
                return False
            self.updated = True
        return run(title, ["apt-get", "install", "-y", "-qq", *extra, *packages], env,
                   INSTALL_TIMEOUT) == 0


def ensure_chromium(apt: Apt) -> None:
    """Install Debian's Chromium for the browser test when missing (as root, best effort)."""
    if Path("/usr/bin/chromium").exists() and Path("/usr/bin/chromedriver").exists():
        return
    if not apt.usable():
        print("\n=== chromium: not installed and cannot install it (needs root and apt-get); "
              "the browser test will skip. Install: apt-get install -y chromium "
              "chromium-driver", flush=True)
        return
    if not apt.install("chromium for the browser test", BROWSER_PACKAGES):
        print("chromium install failed: the browser test will skip", flush=True)


def ensure_promtool(apt: Apt) -> str | None:
    """Return promtool's path, installing Debian's prometheus when missing; None: failed."""
    if shutil.which("promtool") is None and apt.usable():
        apt.install("promtool for the alert rule tests", PROMTOOL_PACKAGES,
                    "--no-install-recommends")
    found = shutil.which("promtool")
    if found is None:
        print("\n=== alert rules: promtool is missing and could not be installed. It is "
              "required: run as root with apt-get, or apt-get install -y prometheus",
              flush=True)
    return found


def main(argv: list[str]) -> int:
    """Run each check in order; return the first non-zero exit code."""
    apt = Apt()
    ensure_chromium(apt)
    promtool = ensure_promtool(apt)
    if promtool is None:
        return 1
    steps = [
        ("lint", [str(BIN / "ruff"), "check", "."]),
        ("types", [str(BIN / "mypy"), *PACKAGES]),
        ("alert rules", [promtool, "check", "rules", str(ALERTS)]),
        ("alert rule tests", [promtool, "test", "rules", str(ALERT_TESTS)]),
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
