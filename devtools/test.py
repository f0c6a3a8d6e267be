"""`make test`: lint, type-check, then every test group (unit, integration, faults).

pytest's fixtures start what the tests need (redis-server, Celery processes, upstreams);
this runner only sequences the checks and fails on the first red one.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PACKAGES = ["app", "tasks", "config", "devtools", "demo"]


def run(title: str, args: list[str]) -> int:
    print(f"\n=== {title}: {' '.join(args)}", flush=True)
    return subprocess.call(args, cwd=ROOT)


def main(argv: list[str]) -> int:
    """Run each check in order; return the first non-zero exit code."""
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
