"""Profile one ingest of N records with py-spy: which functions the worker and the ingest
consumer spend their time in (self time, summed over their pool processes).

    python -m bench.profile [N]      (needs py-spy; prints the top frames of each)
"""

from __future__ import annotations

import collections
import shutil
import subprocess
import sys
from pathlib import Path

from bench import ingest
from bench.env import WORK_DIR, World

TOP = 15


def top_frames(path: str, limit: int = TOP) -> list[tuple[str, float]]:
    """Return the `limit` frames with the most self time in a collapsed-stack file."""
    self_time: collections.Counter[str] = collections.Counter()
    total = 0
    with open(path) as lines:
        for line in lines:
            stack, _, count = line.rpartition(" ")
            frames = stack.split(";")
            if not frames or "(idle)" in stack:
                continue
            self_time[frames[-1]] += int(count)
            total += int(count)
    return [(frame, count / total) for frame, count in self_time.most_common(limit)]


def main() -> None:
    total = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    spy = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if spy is None:
        raise SystemExit("py-spy is not installed: pip install py-spy")
    world = World()
    try:
        system = world.start_system()
        outputs = {}
        spies = []
        for name in ("worker", "ingest"):
            outputs[name] = str(WORK_DIR / f"profile-{name}.txt")
            pid = system.procs[name].process.pid  # type: ignore[union-attr]
            spies.append(subprocess.Popen(
                [spy, "record", "--format", "raw", "--subprocesses", "--nonblocking",
                 "--rate", "200", "-o", outputs[name], "--pid", str(pid)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        run = ingest.ours(world, system, [f"profile-{total}"], world.upstream.url(total))
        print(f"ingested {run.records} records in {run.seconds:.2f}s ({run.rate:,.0f}/s)")
        for spy_proc in spies:
            spy_proc.send_signal(2)
            spy_proc.wait(30)
        for name, path in outputs.items():
            print(f"\n{name}: self time by frame")
            for frame, share in top_frames(path):
                print(f"  {share:6.1%}  {frame}")
    finally:
        world.close()


if __name__ == "__main__":
    main()
