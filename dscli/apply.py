"""`data-streams apply FILE`: create or update the streams a file defines, with a diff.

The file has the shape of ``STREAMS_FILE`` (YAML or JSON, ``${VARS}`` expanded):
``{"streams": {name: definition}}``. The server validates each definition and fills in
its defaults, so the diff compares what it stored before with what it stores now; applying
the same file again stores the same definitions and reports every stream `unchanged`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml
from rich.markup import escape

from dscli.client import REFUSED, Client, CommandError


def read_streams(path: str) -> dict[str, Any]:
    """Return {name: definition} of a streams file, or raise CommandError (refused)."""
    try:
        raw: Any = yaml.safe_load(os.path.expandvars(Path(path).read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise CommandError(f"{path}: cannot read it: {exc}", REFUSED) from None
    streams = raw.get("streams") if isinstance(raw, dict) else None
    if not isinstance(streams, dict) or not streams:
        raise CommandError(f'{path}: expected {{"streams": {{name: definition, ...}}}}',
                           REFUSED)
    return {str(name): body for name, body in streams.items()}


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Return nested objects as {dotted path: value}; lists and scalars are leaves, an
    empty object is no leaf (so emptying one shows as its fields removed)."""
    if not isinstance(value, dict):
        return {prefix: value} if prefix else {}
    flat: dict[str, Any] = {}
    for key, item in value.items():
        flat.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def diff(before: dict[str, Any] | None, after: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the changed paths: {"path", "before", "after"} ("before" absent: added)."""
    old, new = flatten(before or {}), flatten(after)
    changes = []
    for path in sorted(old.keys() | new.keys()):
        if path not in old:
            changes.append({"path": path, "after": new[path]})
        elif path not in new:
            changes.append({"path": path, "before": old[path]})
        elif old[path] != new[path]:
            changes.append({"path": path, "before": old[path], "after": new[path]})
    return changes


def stored(client: Client, name: str) -> dict[str, Any] | None:
    """Return the stream's stored definition, or None when it is not defined."""
    try:
        return client.get(f"/streams/{name}")["definition"]
    except CommandError as exc:
        if exc.status == 404 and exc.error.get("code") == "stream_not_found":
            return None
        raise


def apply_one(client: Client, name: str, definition: Any) -> dict[str, Any]:
    """PUT one definition; return {"stream", "action", "changes"}."""
    before = stored(client, name)
    answer = client.call("PUT", f"/streams/{name}", json=definition)
    changes = diff(before, answer["definition"])
    action = "created" if before is None else "updated" if changes else "unchanged"
    return {"stream": name, "action": action, "changes": changes}


def lines(result: dict[str, Any]) -> list[str]:
    """Return one applied stream as lines for people (rich markup)."""
    out = [f"[bold]{result['stream']}[/bold]: {result['action']}"]
    if result["action"] == "created":
        return out
    for change in result["changes"]:
        path = escape(change["path"])
        if "before" not in change:
            out.append(f"  [green]+ {path}: {_show(change['after'])}[/green]")
        elif "after" not in change:
            out.append(f"  [red]- {path}: {_show(change['before'])}[/red]")
        else:
            out.append(f"  [yellow]~ {path}: {_show(change['before'])} -> "
                       f"{_show(change['after'])}[/yellow]")
    return out


def _show(value: Any) -> str:
    return escape(json.dumps(value, sort_keys=True))
