"""Custom middleware: a class or function named by dotted path in the stream definition.

The path must lie under a module prefix of ``CUSTOM_MIDDLEWARE_PREFIXES`` (checked at PUT
time and again here, when the chain is built). What the path may name:

- a `Middleware` subclass: built as ``cls(**options)``; it counts its own drops;
- any other class: built as ``cls(**options)``; the instance is called per page as
  ``instance(records, context) -> records``;
- a function: called per page as ``function(records, context, **options) -> records``.

Records a plain callable removes are counted as dropped, without reasons.
See `tasks.middleware.examples`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from config.middleware import CustomSpec, import_custom
from tasks.middleware.base import BatchContext, Middleware, Record


class CallableMiddleware(Middleware):
    """Adapts a plain callable `(records, context, **options) -> records`."""

    type = "custom"

    def __init__(self, function: Callable[..., list[Record]], options: dict[str, Any],
                 key_path: str) -> None:
        super().__init__(key_path)
        self.function = function
        self.options = options

    def apply(self, records: list[Record], context: BatchContext) -> list[Record]:
        return self.function(records, context, **self.options)


def build_custom(spec: CustomSpec, key_path: str, prefixes: list[str] | tuple[str, ...]
                 ) -> Middleware:
    """Import and build the custom middleware of `spec` (ValueError if not allowed)."""
    target = import_custom(spec.path, prefixes)
    if inspect.isclass(target) and issubclass(target, Middleware):
        middleware = target(**spec.options)
        middleware.tally.key_path = key_path
    elif inspect.isclass(target):
        instance: Any = target(**spec.options)
        middleware = CallableMiddleware(instance, {}, key_path)
    else:
        middleware = CallableMiddleware(target, dict(spec.options), key_path)
    middleware.type = f"custom:{spec.path}"
    return middleware
