"""The two commands that take a while, with a progress bar on stderr: waiting for a batch
(`start --wait`: pages and records of the running batch) and exporting a version
(`export`: records written of the count the API announced).
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Any

import requests
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from dscli.client import FAILED, UNAVAILABLE, Client, CommandError
from dscli.render import FINAL

# How often `start --wait` asks how the batch is doing, in seconds.
POLL_SECONDS = 0.5
CHUNK_BYTES = 64 * 1024


def _bar(columns: tuple[Any, ...], show: bool) -> Progress:
    """Return a progress bar on stderr, drawn only on a terminal and gone when done."""
    console = Console(stderr=True)
    return Progress(*columns, console=console, transient=True,
                    disable=not (show and console.is_terminal))


def last_final_version(client: Client, name: str) -> int:
    """Return the newest version that has ended (0 when none has): the batch to wait for
    is the first one after it (the one in flight, or the next one to start)."""
    batches = client.get(f"/streams/{name}/batches", limit=20)["batches"]
    return max((b["version"] for b in batches if b.get("status") in FINAL), default=0)


def wait_for_batch(client: Client, name: str, after: int, timeout: float | None,
                   show: bool) -> dict[str, Any] | None:
    """Poll until the first batch newer than `after` ends; return it (None: gave up)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
               TextColumn("{task.fields[pages]} pages"), TextColumn("{task.completed} records"),
               TimeElapsedColumn())
    with _bar(columns, show) as progress:
        task = progress.add_task(f"{name}: waiting for a batch", total=None, pages=0)
        while deadline is None or time.monotonic() < deadline:
            batches = client.get(f"/streams/{name}/batches", limit=20)["batches"]
            ended = [b for b in batches if b["version"] > after and b.get("status") in FINAL]
            if ended:
                return min(ended, key=lambda batch: batch["version"])
            running = client.get(f"/streams/{name}")["in_progress"]
            if running and running["version"] > after:
                progress.update(task, description=f"{name}: batch {running['version']}",
                                completed=running.get("records_received", 0),
                                pages=running.get("pages_received", 0))
            time.sleep(POLL_SECONDS)
    return None


class RecordCounter:
    """Counts the records of an export as its bytes arrive: lines of NDJSON; rows of CSV
    after the header, where a newline inside a quoted cell is no row's end."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.lines = 0
        self.quoted = False

    def feed(self, chunk: bytes) -> int:
        """Count the record ends in `chunk`; return the records so far."""
        if self.kind != "csv":
            self.lines += chunk.count(b"\n")
            return self.lines
        parts = chunk.split(b'"')
        for index, part in enumerate(parts):
            if (index % 2 == 1) == self.quoted:  # outside quotes ("" toggles twice)
                self.lines += part.count(b"\n")
        self.quoted = self.quoted != (len(parts) % 2 == 0)
        return max(self.lines - 1, 0)


def export(client: Client, name: str, kind: str, out: Path, version: int | None,
           show: bool) -> dict[str, Any]:
    """Write a whole version to `out` (through `out`.part, renamed when whole)."""
    partial = out.with_name(out.name + ".part")
    params = {"format": kind, **({"version": version} if version else {})}
    try:
        with client.download(f"/streams/{name}/data", **params) as response:
            total = int(response.headers.get("X-Record-Count", "0"))
            served = int(response.headers.get("X-Stream-Version", "0"))
            written, size = _write(response, kind, partial, total, show, f"{name} v{served}")
    except requests.RequestException as exc:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise CommandError(f"export of {name} broke off: {type(exc).__name__}",
                           UNAVAILABLE) from None
    if written != total:
        partial.unlink()
        raise CommandError(f"export of {name} v{served} ended after {written} of {total} "
                           "records", FAILED)
    os.replace(partial, out)
    return {"stream": name, "version": served, "format": kind, "records": written,
            "bytes": size, "out": str(out)}


def _write(response: requests.Response, kind: str, path: Path, total: int, show: bool,
           what: str) -> tuple[int, int]:
    """Copy the answer into `path` with a bar of records written; return (records, bytes)."""
    counter = RecordCounter(kind)
    written = size = 0
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("records"), TimeElapsedColumn())
    with _bar(columns, show) as progress, path.open("wb") as file:
        task = progress.add_task(f"{what} -> {path.name.removesuffix('.part')}", total=total)
        for chunk in response.iter_content(CHUNK_BYTES):
            file.write(chunk)
            size += len(chunk)
            written = counter.feed(chunk)
            progress.update(task, completed=written)
    return written, size
