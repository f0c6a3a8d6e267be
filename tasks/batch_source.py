"""What a batch does to each page before the middleware: its kind, and detail requests.

`BatchSource.start` plans the batch (`tasks.incremental`: full or incremental, and the
source with its cursor) and, once the pager exists, `attach` adds the detail requests
(`tasks.upstream.details`). Per page, `prepare` returns the records the middleware gets
(tombstones set aside, records refetched unchanged skipped, details merged) and
`entries` what goes to the store; `finish` checks the detail failures and `info` is
what the batch's metadata keeps. A stream with neither option passes pages through.
"""

from __future__ import annotations

from typing import Any

from app.extensions import Store
from app.records import to_entries
from app.store.locks import BatchLease
from config.source import Source
from config.streams import StreamDefinition
from tasks.incremental import FULL, BatchPlan, plan_batch
from tasks.upstream import Page, Pager
from tasks.upstream.details import DetailFetcher


class BatchSource:
    """The per-page steps of one batch that come before the middleware."""

    def __init__(self, store: Store, definition: StreamDefinition, lease: BatchLease,
                 plan: BatchPlan | None) -> None:
        self.store = store
        self.definition = definition
        self.lease = lease
        self.plan = plan
        self.details: DetailFetcher | None = None

    @classmethod
    def start(cls, store: Store, definition: StreamDefinition, lease: BatchLease
              ) -> BatchSource:
        """Plan the batch (full or incremental) of `lease`."""
        return cls(store, definition, lease, plan_batch(store, definition, lease))

    @property
    def source(self) -> Source:
        """Return the source to page through (with the cursor placed, when incremental)."""
        return self.plan.source if self.plan else self.definition.source

    @property
    def full(self) -> bool:
        """Tell whether the batch is a whole version (not changes merged onto one)."""
        return self.plan is None or self.plan.mode == FULL

    def attach(self, pager: Pager) -> BatchSource:
        """Add the detail requests, through the pager's session, auth and rate limit."""
        if self.definition.source.details is not None:
            self.details = DetailFetcher(self.definition.source.details, pager)
        return self

    def prepare(self, page: Page) -> tuple[list[Any], list[str]]:
        """Return the page's records for the middleware, and its tombstones' keys."""
        records: list[Any] = page.records
        dead: list[str] = []
        if self.plan is not None:
            records, dead = self.plan.split(self.store, self.lease.stream, records,
                                            page.number)
        if self.details is not None and records:
            records = self.details.fill(records, page.number)
        return records, dead

    def entries(self, kept: list[Any], dead: list[str], page: int
                ) -> list[tuple[float, str]]:
        """Return the (score, member) entries of a page after the middleware."""
        if self.plan is not None:
            return self.plan.entries(kept, dead, page)
        return to_entries(kept, page, self.definition.order_by)

    def finish(self) -> None:
        """Fail the batch if too many detail requests failed."""
        if self.details is not None:
            self.details.check()

    def info(self) -> dict[str, Any]:
        """Return what the batch metadata keeps of these steps."""
        info: dict[str, Any] = {}
        if self.plan is not None:
            info.update(self.plan.info(self.lease))
        if self.details is not None:
            info["details"] = self.details.stats()
        return info
