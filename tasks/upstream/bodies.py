"""JSON request bodies: values placed at dotted paths of a body template.

Pagination values (page, offset, cursor) and the incremental cursor can travel in a POST
body instead of the query string. A name is a dotted path, so a GraphQL body takes its
cursor variables where GraphQL wants them:

    place({"query": "...", "variables": {"first": 100}}, {"variables.after": "Y3Vy"})
    -> {"query": "...", "variables": {"first": 100, "after": "Y3Vy"}}

The template is never changed; every object on a path is copied before it is written.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.exceptions import UpstreamError


def place(body: Any, values: Mapping[str, Any]) -> dict[str, Any]:
    """Return a copy of the object `body` with each value set at its dotted name."""
    result: dict[str, Any] = dict(body) if isinstance(body, dict) else {}
    for name, value in values.items():
        steps = name.split(".")
        target = result
        for step in steps[:-1]:
            child = target.get(step)
            if child is None:
                child = {}
            elif not isinstance(child, dict):
                raise UpstreamError("body", f"cannot place {name!r} in the body: {step!r} "
                                    "is not an object")
            target[step] = child = dict(child)
            target = child
        target[steps[-1]] = value
    return result
