"""The soak: a random process killed, or Redis restarted, every 15-25 s, at the defaults.

For SOAK_SECONDS the fetch worker, the ingest consumer, beat or web is SIGKILLed (and
started again at once, as a supervisor would), or Redis is restarted, while readers walk
every version with cursors. No reader may ever see a partial, mixed or older version or a
500, and a whole new version must publish within two minutes of the last fault. Every
limit is at its default; only the stream's own interval is short (5 s).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any, overload

import pytest
import requests

from devtools.redis_server import RedisServer
from devtools.system import System
from tests.faults.conftest import DEFAULT_LIMITS, launch
from tests.integration.conftest import Api
from tests.support.upstream import Upstream
from tests.support.waiting import wait_for

pytestmark = pytest.mark.faults

SOAK_SECONDS = 150
GAP = (15.0, 25.0)  # seconds between two faults
RECOVERY = 120  # a whole new version within this many seconds of the last fault
INTERVAL = 5  # the stream's interval, in seconds
RECORDS, PAGE_SIZE, READ_LIMIT = 120, 20, 25
KINDS = ("worker", "ingest", "beat", "web", "redis")


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RedisServer, System]]:
    server, system = launch(tmp_path_factory.mktemp("soak"), "soak", **DEFAULT_LIMITS)
    yield server, system
    system.stop_all()
    server.stop()


class Generations(Sequence[dict[str, Any]]):
    """The upstream's records, relabelled each time page 1 is served (a new batch begins),
    so every batch is one snapshot and a version mixing two labels is a mixed version."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.generation = 0
        self.lock = threading.Lock()

    def __len__(self) -> int:
        return self.count

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, int):
            return self[index:index + 1][0]
        with self.lock:
            if index.start == 0:
                self.generation += 1
            label = f"g{self.generation}"
        return [{"id": i + 1, "label": label} for i in range(self.count)[index]]


class Reader:
    """Walks whole versions with cursors, and notes every problem it sees."""

    def __init__(self, system: System, name: str) -> None:
        self.system, self.name = system, name
        self.http = requests.Session()
        self.problems: list[str] = []
        self.statuses: dict[str, int] = {}
        self.whole_reads = 0
        self.versions: set[int] = set()
        self.newest = 0

    def note(self, status: str) -> None:
        self.statuses[status] = self.statuses.get(status, 0) + 1

    def page(self, cursor: str | None) -> dict[str, Any] | None:
        params: dict[str, Any] = {"limit": READ_LIMIT, **({"cursor": cursor} if cursor else {})}
        try:
            response = self.http.get(self.system.api(f"/streams/{self.name}/data"),
                                     params=params, timeout=10)
        except requests.RequestException:
            self.note("no answer")  # web is down: a supervisor restarts it
            return None
        code = error_code(response)
        self.note(f"{response.status_code}{f' {code}' if code else ''}")
        if response.status_code == 503 and code == "store_unavailable":
            return None  # Redis is restarting
        if response.status_code == 410 and code == "gone":
            return None
        if response.status_code != 200:
            self.problems.append(f"{response.status_code}: {response.text[:300]}")
            return None
        return response.json()

    def read_version(self) -> None:
        cursor, records, versions = None, [], set()
        for _ in range(RECORDS // READ_LIMIT + 2):
            body = self.page(cursor)
            if body is None:
                return
            versions.add(body["version"])
            records += body["records"]
            cursor = body["next_cursor"]
            if cursor is None:
                break
        version = min(versions)
        labels = {record["label"] for record in records}
        ids = sorted(record["id"] for record in records)
        if len(versions) != 1 or len(labels) != 1:
            self.problems.append(f"mixed read: versions {versions}, labels {labels}")
        if ids != list(range(1, RECORDS + 1)):
            self.problems.append(f"partial version {version}: {len(ids)} records")
        if version < self.newest:
            self.problems.append(f"older version {version} after {self.newest}")
        self.newest = max(self.newest, version)
        self.versions.add(version)
        self.whole_reads += 1

    def run(self, done: threading.Event) -> None:
        for _ in range(100_000):
            if done.is_set():
                return
            self.read_version()
            time.sleep(0.05)  # pacing of the readers, not a synchronisation


def error_code(response: requests.Response) -> str | None:
    """Return the `error.code` of an error answer, or None (a 200, or not our JSON)."""
    if response.status_code == 200:
        return None
    try:
        return str(response.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return None


def inject(kind: str, server: RedisServer, system: System) -> None:
    """Inject one fault: SIGKILL a process and start it again, or restart Redis."""
    if kind == "redis":
        server.restart()
        return
    system.procs[kind].kill()
    system.start(kind)


def current(api: Api, name: str) -> int:
    try:
        response = api.call("GET", f"/streams/{name}")
    except requests.RequestException:
        return 0
    return int(response.json().get("current_version") or 0) if response.ok else 0


def test_soak_random_kills_and_redis_restarts(running: tuple[RedisServer, System],
                                              upstream: Upstream, name: str) -> None:
    server, system = running
    api = Api(system)
    feed = upstream.feed(name, [], page_size=PAGE_SIZE, delay=0.15)
    feed.records = Generations(RECORDS)  # type: ignore[assignment]
    api.define(name, upstream.url(name))
    api.start(name, interval_seconds=INTERVAL)
    first = wait_for(lambda: current(api, name), timeout=60, what="the first version")
    done = threading.Event()
    readers = [Reader(system, name) for _ in range(2)]
    threads = [threading.Thread(target=r.run, args=(done,)) for r in readers]
    for thread in threads:
        thread.start()

    rng = random.Random(1313)
    plan = list(KINDS)
    rng.shuffle(plan)  # every kind of fault once, then at random
    faults: list[tuple[float, str, int]] = []
    began = time.monotonic()
    for index in range(100):
        gap = rng.uniform(*GAP)
        if time.monotonic() - began + gap > SOAK_SECONDS:
            break
        time.sleep(gap)  # the time between two faults, not a synchronisation
        kind = plan[index] if index < len(plan) else rng.choice(KINDS)
        faults.append((round(time.monotonic() - began, 1), kind, current(api, name)))
        inject(kind, server, system)
    last_fault = time.monotonic()
    at_last_fault = max(current(api, name), faults[-1][2])

    fresh = wait_for(lambda: (v := current(api, name)) > at_last_fault and v, timeout=RECOVERY,
                     interval=0.5, what="a whole new version after the last fault")
    recovered = time.monotonic() - last_fault
    wait_for(lambda: all(r.newest >= fresh for r in readers), timeout=30,
             what="the readers to read the new version")
    done.set()
    for thread in threads:
        thread.join(timeout=30)
    api.stop(name)

    problems = [p for r in readers for p in r.problems]
    statuses = {k: sum(r.statuses.get(k, 0) for r in readers)
                for k in sorted({k for r in readers for k in r.statuses})}
    summary = (f"\nsoak {SOAK_SECONDS}s: faults {faults}; versions {first}..{fresh}; "
               f"{sum(r.whole_reads for r in readers)} whole reads of "
               f"{len(set().union(*(r.versions for r in readers)))} versions; statuses "
               f"{statuses}; new version {fresh} {recovered:.1f}s after the last fault")
    print(summary)
    assert problems == [], summary
    assert {kind for _, kind, _ in faults} == set(KINDS)
    assert recovered < RECOVERY
    assert all(proc.running for proc in system.procs.values())
