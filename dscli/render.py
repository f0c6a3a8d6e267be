"""What the command line prints: JSON for scripts (``--json``), rich tables and lines for
people, and errors (the API's message on stderr; with ``--json`` also as JSON on stdout).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from dscli.client import CommandError

# Final statuses of a batch (anything else is still running).
FINAL = ("complete", "quarantined", "failed", "cancelled", "abandoned", "discarded")
STYLES = {"complete": "green", "running": "cyan", "quarantined": "yellow", "failed": "red",
          "cancelled": "magenta", "abandoned": "magenta", "discarded": "dim"}


class Output:
    """Prints one command's result as JSON or for people."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.out = Console(highlight=False, soft_wrap=False)
        self.err = Console(stderr=True, highlight=False)

    def result(self, data: Any, *lines: str) -> None:
        """Print `data` as JSON, or `lines` (rich markup) for people."""
        if self.as_json:
            print(json.dumps(data, indent=2, sort_keys=True))
        else:
            for line in lines:
                self.out.print(line)

    def table(self, data: Any, table: Table) -> None:
        """Print `data` as JSON, or `table` for people."""
        if self.as_json:
            self.result(data)
        else:
            self.out.print(table)

    def error(self, exc: CommandError) -> None:
        """Report a failed command: the message on stderr, the error as JSON on stdout."""
        where = f" (HTTP {exc.status}, {exc.error.get('code')})" if exc.status else ""
        self.err.print(f"data-streams: {exc.message}{where}", markup=False)
        if self.as_json:
            print(json.dumps({**exc.result, "error": {**exc.error, "status": exc.status},
                              "exit_code": exc.exit_code}, indent=2, sort_keys=True))


def styled(status: str | None) -> str:
    """Return a batch status coloured by what it means."""
    if not status:
        return "-"
    style = STYLES.get(status)
    return f"[{style}]{status}[/{style}]" if style else status


def duration(seconds: float | None) -> str:
    """Return seconds as the two largest units: 45s, 3m 05s, 2h 10m, 4d 01h."""
    if seconds is None:
        return "-"
    seconds = int(seconds)
    for unit, size, small, small_size in (("d", 86400, "h", 3600), ("h", 3600, "m", 60),
                                          ("m", 60, "s", 1)):
        if seconds >= size:
            return f"{seconds // size}{unit} {(seconds % size) // small_size:02d}{small}"
    return f"{seconds}s"


def batch_reason(batch: dict[str, Any]) -> str:
    """Return why a batch ended as it did: the error, the gate, or the stop reason."""
    error = batch.get("error")
    if isinstance(error, dict):
        where = f" (page {error['page']})" if error.get("page") is not None else ""
        return f"{error.get('kind', 'error')}: {error.get('message', '')}{where}"
    return str(batch.get("quarantine_reason") or batch.get("stop_reason") or "")


def streams_table(rows: Iterable[dict[str, Any]]) -> Table:
    """Return the table of `data-streams streams`."""
    table = Table("stream", "state", "version", "freshness", "interval", "last batch",
                  box=None, header_style="bold")
    for row in rows:
        age = duration(row.get("age_seconds"))
        fresh = f"[red]{age} stale[/red]" if row.get("stale") else age
        last = row.get("last_batch") or {}
        progress = row.get("in_progress") or {}
        summary = (f"v{last['version']} {styled(last.get('status'))}" if last else "-")
        if progress:
            summary += (f" ({progress.get('pages_received', 0)} pages, "
                        f"{progress.get('records_received', 0)} records)")
        elif last.get("status") != "complete" and batch_reason(last):
            summary += f" {escape(batch_reason(last))}"
        table.add_row(row["stream"], row["state"], str(row.get("current_version") or "-"),
                      fresh, duration(row.get("interval_seconds")), summary)
    return table


def batches_table(batches: Iterable[dict[str, Any]]) -> Table:
    """Return the table of `data-streams batches NAME`."""
    table = Table("version", "status", "records", "pages", "started", "finished", "reason",
                  box=None, header_style="bold")
    for batch in batches:
        records = batch.get("records", batch.get("records_received"))
        table.add_row(str(batch["version"]), styled(batch.get("status")),
                      "-" if records is None else str(records),
                      str(batch.get("pages_received", "-")), batch.get("started_at") or "-",
                      batch.get("finished_at") or "-", escape(batch_reason(batch)))
    return table


def description(stream: dict[str, Any]) -> Table:
    """Return `data-streams show NAME` as a two-column table."""
    table = Table(box=None, show_header=False)
    table.add_column(style="bold")
    table.add_column()
    progress = stream.get("in_progress")
    rows = {"stream": stream["stream"], "state": stream.get("state"),
            "interval": duration(stream.get("interval_seconds")),
            "next run": stream.get("next_run_at") or "-",
            "current version": stream.get("current_version") or "-",
            "in progress": (f"v{progress['version']} {progress.get('status')}: "
                            f"{progress.get('pages_received', 0)} pages, "
                            f"{progress.get('records_received', 0)} records"
                            if progress else "-"),
            "rate limited until": stream.get("rate_limited_until") or "-",
            "definition": yaml.safe_dump(stream.get("definition"), sort_keys=True).rstrip()}
    for key, value in rows.items():
        table.add_row(key, escape(str(value)))
    return table


def change_lines(changes: dict[str, Any]) -> list[str]:
    """Return a change set for people: a summary, then one line per record or key."""
    head = (f"{changes['stream']}: version {changes['from']} -> {changes['to']}: "
            f"{len(changes['added'])} added, {len(changes['updated'])} updated, "
            f"{len(changes['removed'])} removed")
    marks = (("added", "green", "+"), ("updated", "yellow", "~"), ("removed", "red", "-"))
    return [head, *(f"[{style}]{mark} {escape(json.dumps(item, sort_keys=True))}[/{style}]"
                    for kind, style, mark in marks for item in changes[kind])]
