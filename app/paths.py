"""Dotted paths into JSON documents ("data.items", "meta.next"), used by definitions."""

from __future__ import annotations

from typing import Any

MISSING = object()


def get_path(document: Any, path: str, default: Any = MISSING) -> Any:
    """Return the value at dotted `path` ('' is the document itself), or `default`.

    Without a default, a missing step raises KeyError naming the path.
    """
    value = document
    if path:
        for step in path.split("."):
            if isinstance(value, dict) and step in value:
                value = value[step]
            elif isinstance(value, list) and step.isdigit() and int(step) < len(value):
                value = value[int(step)]
            elif default is not MISSING:
                return default
            else:
                raise KeyError(path)
    return value
