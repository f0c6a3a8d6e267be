"""Detail requests: one more GET per record, its answer merged into the record.

`source.details.url` is a template filled from each record's fields (``{id}``,
``{owner.login}``; values are URL-quoted). Each request goes through the pager's own
session, auth, rate limit, retries and SSRF guard, at most ``concurrency`` at a time. A
template naming a field the record lacks fails the batch at once. A request that still
fails after its retries is counted and sampled, and its record is left out of the batch;
more failures than ``max_failed_ratio`` of the requests fail the batch (`check`, after
the last page; at the first failure when the ratio is 0).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

from app.exceptions import UpstreamError
from app.records import get_path
from app.redaction import url as redact
from config.incremental import PLACEHOLDER, Details
from tasks.upstream.client import Pager
from tasks.upstream.request import PageFetcher

MAX_SAMPLES = 10
# What get_path answers for a path the answer lacks (None may be the detail itself).
ABSENT = object()


class DetailFetcher:
    """Fetches the details of each page's records for one batch."""

    def __init__(self, config: Details, pager: Pager) -> None:
        self.config = config
        parts = pager.fetcher
        source = pager.source.model_copy(update={
            "method": "GET", "body": None, "params": {}, "format": "json", "csv": None})
        self.fetcher = PageFetcher(source, session=parts.session, policy=parts.policy,
                                   auth=parts.auth, throttle=parts.throttle, sleep=parts.sleep)
        self.secret_params = pager.auth.secret_params
        self.requests = self.failed = 0
        self.samples: list[dict[str, Any]] = []

    def fill(self, records: list[Any], page: int) -> list[Any]:
        """Return the page's records with their details; failed ones are left out."""
        urls = [self.url(record, page, position)
                for position, record in enumerate(records, start=1)]
        # A pool per page: no thread outlives the page, whatever ends the batch.
        with ThreadPoolExecutor(self.config.concurrency, thread_name_prefix="details") as pool:
            answers = list(pool.map(self._fetch, urls))
        kept = []
        for position, (record, url, answer) in enumerate(zip(records, urls, answers,
                                                             strict=True), start=1):
            self.requests += 1
            merged = answer if isinstance(answer, UpstreamError) else self._merge(record,
                                                                                   answer)
            if isinstance(merged, UpstreamError):
                self._failed(merged, page, position, url)
            else:
                kept.append(merged)
        return kept

    def url(self, record: Any, page: int, position: int) -> str:
        """Return the detail URL of one record; a field the template names must be there."""
        def value(match: Any) -> str:
            path = match.group(1).strip()
            found = get_path(record, path, None) if isinstance(record, dict) else None
            if found is None or isinstance(found, dict | list):
                raise UpstreamError("details_template", f"details.url names {{{path}}}, which "
                                    f"record {position} of page {page} does not have",
                                    page=page)
            text = ("true" if found else "false") if isinstance(found, bool) else str(found)
            return quote(text, safe="")
        return PLACEHOLDER.sub(value, self.config.url)

    def _fetch(self, url: str) -> Any:
        try:
            return self.fetcher.fetch(url, {}, None).body
        except UpstreamError as exc:
            return exc

    def _merge(self, record: Any, body: Any) -> Any:
        detail = get_path(body, self.config.records_path, ABSENT)
        if detail is ABSENT:
            return UpstreamError("details", f"details.records_path "
                                 f"{self.config.records_path!r} is missing from the answer")
        if self.config.into is not None:
            return {**record, self.config.into: detail}
        if not isinstance(detail, dict):
            return UpstreamError("details", f"the detail is {type(detail).__name__}, not an "
                                 "object to merge; set details.into to keep it under a field")
        return {**record, **detail}

    def _failed(self, exc: UpstreamError, page: int, position: int, url: str) -> None:
        shown = redact(url, self.secret_params)
        if self.config.max_failed_ratio == 0:
            raise UpstreamError(exc.kind, f"the detail request of record {position} of page "
                                f"{page} failed: {exc.message}", status=exc.status, page=page,
                                attempts=exc.attempts, url=shown)
        self.failed += 1
        if len(self.samples) < MAX_SAMPLES:
            self.samples.append({"page": page, "record": position, "url": shown,
                                 "kind": exc.kind, "reason": exc.message[:300]})

    def check(self) -> None:
        """Fail the batch when more than max_failed_ratio of the requests failed."""
        ratio = self.config.max_failed_ratio
        if self.requests and self.failed / self.requests > ratio:
            first = self.samples[0] if self.samples else {}
            raise UpstreamError("details", f"{self.failed} of {self.requests} detail requests "
                                f"failed, more than max_failed_ratio {ratio:g}; the first: "
                                f"record {first.get('record')} of page {first.get('page')}: "
                                f"{first.get('reason')}", page=first.get("page"),
                                url=first.get("url"))

    def stats(self) -> dict[str, Any]:
        """Return the counts and samples for the batch metadata."""
        return {"requests": self.requests, "failed": self.failed,
                "samples": list(self.samples)}
