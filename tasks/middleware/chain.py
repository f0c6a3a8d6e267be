"""The middleware chain of one batch: every step applied to every page, in order.

The chain guards each step: a step that raises (or returns something other than a list)
fails the batch with a `MiddlewareError` naming the step's index and type. Its counts
are `stats()`, which the worker sends with the batch totals into the batch metadata,
with the fields steps set from the batch context (`context_fields`: the change feed
ignores them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from itertools import islice
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded

from app.exceptions import MiddlewareError
from config import defaults
from config.streams import StreamDefinition
from tasks.middleware.base import BatchContext, Middleware, Record
from tasks.middleware.cast import Cast
from tasks.middleware.custom import build_custom
from tasks.middleware.fields import AddFields, Drop, Flatten, Rename, Select
from tasks.middleware.filtering import Filter
from tasks.middleware.quality import Dedupe, Validate

BUILTINS: dict[str, Callable[[Any, str], Middleware]] = {
    "select": Select, "drop": Drop, "rename": Rename, "add_fields": AddFields,
    "filter": Filter, "flatten": Flatten, "cast": Cast, "dedupe": Dedupe,
    "validate": Validate}


class Chain:
    """An ordered list of middleware applied to every page of one batch."""

    def __init__(self, steps: list[Middleware] | None = None) -> None:
        self.steps = steps or []

    def apply(self, records: list[Record], context: BatchContext) -> list[Record]:
        """Return the page's records after every step."""
        for index, step in enumerate(self.steps):
            records = self._run(index, step, step.apply, records, context)
        return records

    def finish(self, context: BatchContext) -> Iterator[list[Record]]:
        """Yield the records steps held back, a page of at most `HELD_PAGE_RECORDS` at a
        time, each passed through the steps after the one that held it; the first page
        is `context.page` and each page yielded the next."""
        page = context.page
        for index, step in enumerate(self.steps):
            for held in self._held(index, step, context):
                step.tally.records_out += len(held)
                records = held
                for later in range(index + 1, len(self.steps)):
                    if records:
                        records = self._run(later, self.steps[later], self.steps[later].apply,
                                            records, replace(context, page=page))
                if records:
                    yield records
                    page += 1

    def _held(self, index: int, step: Middleware, context: BatchContext
              ) -> Iterator[list[Record]]:
        """Yield what `step.finish` holds, `HELD_PAGE_RECORDS` at a time."""
        try:
            held = iter(step.finish(context))
            while chunk := list(islice(held, defaults.HELD_PAGE_RECORDS)):
                yield chunk
        except (MiddlewareError, SoftTimeLimitExceeded):
            raise
        except Exception as exc:
            raise MiddlewareError(index, step.type, f"{type(exc).__name__}: {exc}",
                                  page=context.page) from exc

    def _run(self, index: int, step: Middleware,
             method: Callable[[list[Record], BatchContext], list[Record]],
             records: list[Record], context: BatchContext) -> list[Record]:
        step.tally.records_in += len(records)
        result = self._call(index, step, lambda: method(records, context), context)
        step.tally.records_out += len(result)
        return result

    def _call(self, index: int, step: Middleware, call: Callable[[], Any],
              context: BatchContext) -> list[Record]:
        try:
            result = call()
        except (MiddlewareError, SoftTimeLimitExceeded):
            raise
        except Exception as exc:
            raise MiddlewareError(index, step.type, f"{type(exc).__name__}: {exc}",
                                  page=context.page) from exc
        if not isinstance(result, list):
            raise MiddlewareError(index, step.type, f"returned {type(result).__name__}, "
                                  "not a list of records", page=context.page)
        return result

    @property
    def context_fields(self) -> frozenset[str]:
        """Return the fields the steps set from the batch context (not upstream)."""
        return frozenset(name for step in self.steps for name in step.context_fields)

    def stats(self) -> dict[str, Any]:
        """Return per-step counts and totals for the batch metadata."""
        steps = [{"index": index, "type": step.type, **step.tally.as_dict()}
                 for index, step in enumerate(self.steps)]
        totals = {name: sum(step[name] for step in steps)
                  for name in ("dropped", "failed", "quarantined")}
        return {**totals, "context_fields": sorted(self.context_fields), "steps": steps}


def build_step(index: int, spec: Any, key_path: str, prefixes: Sequence[str]) -> Middleware:
    """Build the middleware of one spec; a spec that cannot be built fails the batch."""
    try:
        if spec.type == "custom":
            return build_custom(spec, key_path, tuple(prefixes))
        return BUILTINS[spec.type](spec, key_path)
    except Exception as exc:
        raise MiddlewareError(index, spec.type, f"cannot be built: {exc}") from exc


def build_chain(definition: StreamDefinition, *, custom_prefixes: Sequence[str] = ()
                ) -> Chain:
    """Build the chain declared by a stream definition (once per batch)."""
    return Chain([build_step(index, spec, definition.key, custom_prefixes)
                  for index, spec in enumerate(definition.middleware)])
