"""Readers that page through whole versions of a stream while faults happen, and record
what they saw: every answer's status, and every version read from first page to last.

A reader follows cursors the way a warehouse loader does: on a 503 it waits a little and
asks for the same cursor again; on a 410 it starts over. It stops when told to, after
`MAX_PAGES` pages, or after `MAX_SECONDS`, whichever comes first.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import requests

MAX_PAGES = 20_000
MAX_SECONDS = 120.0
# Wait before retrying a 503 (the Retry-After of 5 s would make the test slow).
RETRY_SECONDS = 0.1


@dataclass
class Answer:
    at: float
    status: int
    code: str | None = None
    retry_after: str | None = None


@dataclass
class Read:
    """One whole version read through its cursors."""

    at: float
    version: int
    records: list[Any]


@dataclass
class Reader:
    """Pages through `stream`'s current version again and again in a thread."""

    base_url: str
    stream: str
    limit: int = 7
    answers: list[Answer] = field(default_factory=list)
    reads: list[Read] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.http = requests.Session()

    def start(self) -> Reader:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=30)

    def _run(self) -> None:
        deadline = time.monotonic() + MAX_SECONDS
        while not self.stopping.is_set() and len(self.answers) < MAX_PAGES \
                and time.monotonic() < deadline:
            self._read_whole_version()

    def _read_whole_version(self) -> None:
        cursor: str | None = None
        version: int | None = None
        records: list[Any] = []
        while len(self.answers) < MAX_PAGES and not self.stopping.is_set():
            body = self._page(cursor)
            if body is None:  # 410 or a problem: start over
                return
            if not body:  # 503: the same cursor again
                time.sleep(RETRY_SECONDS)
                continue
            if version is not None and body["version"] != version:
                self.problems.append(f"one read mixed versions {version} and {body['version']}")
                return
            version = body["version"]
            records += body["records"]
            cursor = body["next_cursor"]
            if cursor is None:
                self.reads.append(Read(time.monotonic(), body["version"], records))
                return

    def _page(self, cursor: str | None) -> dict[str, Any] | None:
        params: dict[str, Any] = {"limit": self.limit, **({"cursor": cursor} if cursor else {})}
        try:
            response = self.http.get(f"{self.base_url}/streams/{self.stream}/data",
                                     params=params, timeout=30)
        except requests.RequestException as exc:
            self.problems.append(f"no answer: {type(exc).__name__}")
            return None
        answer = Answer(time.monotonic(), response.status_code)
        self.answers.append(answer)
        if response.status_code == 200:
            return dict(response.json())
        try:
            answer.code = response.json()["error"]["code"]
        except ValueError:
            self.problems.append(f"{response.status_code} without the JSON error")
        answer.retry_after = response.headers.get("Retry-After")
        if response.status_code == 503:
            return {}
        if response.status_code != 410:
            self.problems.append(f"{response.status_code}: {response.text[:200]}")
        return None

    def unavailable(self) -> list[Answer]:
        return [a for a in self.answers if a.status != 200]
