"""The pagination kinds: from one page's answer to the request of the next, or a stop.

Each paginator turns (the page just fetched) into the next `PageRequest`, or None with
`stop_reason` set to the rule that ended pagination: ``no_next``, ``empty_page``,
``short_page``, ``total_reached`` or ``has_more_false``. The loop guard (`LoopGuard`)
and ``max_pages`` are applied by the pager on top of every kind.

What the upstream says about the whole outranks the size of one page: with a total
(``total_path``, ``total_pages_path``) a short page does not end pagination (an upstream
may cap pages below the ``limit`` asked for), the next request starts after the records
actually received, and an empty page before the total, or a ``has_more`` with no cursor,
fails the batch with kind ``incomplete`` naming what was expected and what was received.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

import orjson

from app.exceptions import UpstreamError
from app.records import get_path
from config.source import (
    CursorPagination,
    LinkHeaderPagination,
    NextUrlPagination,
    OffsetPagination,
    PageNumberPagination,
    Source,
)


@dataclass(frozen=True)
class PageRequest:
    """What to fetch: a URL and the pagination parameters to add (query or body)."""

    url: str
    params: dict[str, Any] = field(default_factory=dict)
    first: bool = False


@dataclass(frozen=True)
class PageAnswer:
    """What a page said: its body, records and Link header targets by rel."""

    body: Any
    records: list[Any]
    links: dict[str, str]


def _int_at(body: Any, path: str | None) -> int | None:
    value = get_path(body, path, None) if path else None
    try:
        return int(value) if value is not None and not isinstance(value, bool) else None
    except (TypeError, ValueError):
        return None


class Paginator:
    """Decides the next page; `stop_reason` tells why there is none."""

    # Whether every page is sent the source's params (a next link carries its own).
    keeps_params = True

    def __init__(self, source: Source) -> None:
        self.source = source
        self.stop_reason: str | None = None
        self.fetched = 0
        self.received = 0

    def first(self) -> PageRequest:
        """Return the request of the first page."""
        return PageRequest(self.source.url, self.first_params(), first=True)

    def first_params(self) -> dict[str, Any]:
        return {}

    def next(self, current: PageRequest, answer: PageAnswer) -> PageRequest | None:
        """Return the request of the page after `current`, or None (stop_reason set)."""
        self.fetched += 1
        self.received += len(answer.records)
        following = self.follow(current, answer)
        if following is None and self.stop_reason is None:
            self.stop_reason = "no_next"
        return following

    def follow(self, current: PageRequest, answer: PageAnswer) -> PageRequest | None:
        return None

    def stop(self, reason: str) -> None:
        self.stop_reason = reason


def incomplete(what: str, expected: int, received: int) -> UpstreamError:
    """Return the error of a pagination that ended before the upstream's own total."""
    return UpstreamError("incomplete", f"the upstream says {expected} {what} but pagination "
                         f"ended after {received}", details={
                             "expected": expected, "received": received, "unit": what})


class NextUrlPaginator(Paginator):
    keeps_params = False

    def follow(self, current: PageRequest, answer: PageAnswer) -> PageRequest | None:
        assert isinstance(self.source.pagination, NextUrlPagination)
        target = get_path(answer.body, self.source.pagination.next_url_path, None)
        return PageRequest(urljoin(current.url, str(target))) if target else None


class LinkHeaderPaginator(Paginator):
    keeps_params = False

    def follow(self, current: PageRequest, answer: PageAnswer) -> PageRequest | None:
        assert isinstance(self.source.pagination, LinkHeaderPagination)
        target = answer.links.get(self.source.pagination.rel)
        return PageRequest(urljoin(current.url, target)) if target else None


class PageNumberPaginator(Paginator):
    def first_params(self) -> dict[str, Any]:
        return self._params(self._config.start_page)

    @property
    def _config(self) -> PageNumberPagination:
        assert isinstance(self.source.pagination, PageNumberPagination)
        return self.source.pagination

    def _params(self, page: int) -> dict[str, Any]:
        config = self._config
        params: dict[str, Any] = {config.page_param: page}
        if config.page_size_param and config.page_size:
            params[config.page_size_param] = config.page_size
        return params

    def follow(self, current: PageRequest, answer: PageAnswer) -> PageRequest | None:
        config = self._config
        total = _int_at(answer.body, config.total_pages_path)
        if total is not None and self.fetched >= total:
            self.stop("total_reached")
        elif total is not None and not answer.records:
            raise incomplete("pages", total, self.fetched - 1)
        elif not answer.records:
            self.stop("empty_page")
        elif total is None and config.page_size and len(answer.records) < config.page_size:
            self.stop("short_page")
        else:
            page = int(current.params[config.page_param]) + 1
            return PageRequest(self.source.url, self._params(page))
        return None


class OffsetPaginator(Paginator):
    @property
    def _config(self) -> OffsetPagination:
        assert isinstance(self.source.pagination, OffsetPagination)
        return self.source.pagination

    def first_params(self) -> dict[str, Any]:
        config = self._config
        return {config.offset_param: config.start_offset, config.limit_param: config.limit}

    def follow(self, current: PageRequest, answer: PageAnswer) -> PageRequest | None:
        config = self._config
        # The next page starts after what was received, whatever size was asked for.
        offset = int(current.params[config.offset_param]) + len(answer.records)
        total = _int_at(answer.body, config.total_path)
        if total is not None and offset >= total:
            self.stop("total_reached")
        elif total is not None and not answer.records:
            raise incomplete("records", total - config.start_offset, self.received)
        elif not answer.records:
            self.stop("empty_page")
        elif total is None and len(answer.records) < config.limit:
            self.stop("short_page")
        else:
            return PageRequest(self.source.url, {config.offset_param: offset,
                                                 config.limit_param: config.limit})
        return None


class CursorPaginator(Paginator):
    def __init__(self, source: Source) -> None:
        super().__init__(source)
        self.seen: set[str] = set()

    def follow(self, current: PageRequest, answer: PageAnswer) -> PageRequest | None:
        config = self.source.pagination
        assert isinstance(config, CursorPagination)
        if config.has_more_path is not None:
            has_more = get_path(answer.body, config.has_more_path, None)
            if has_more is False or has_more in ("false", 0):
                self.stop("has_more_false")
                return None
        cursor = get_path(answer.body, config.cursor_path, None)
        if cursor is None or cursor == "":
            if config.has_more_path is not None and _says_more(
                    get_path(answer.body, config.has_more_path, None)):
                raise UpstreamError("incomplete", f"{config.has_more_path} says there is "
                                    f"more but {config.cursor_path} holds no cursor",
                                    details={"received": self.received})
            return None
        text = str(cursor)
        if text in self.seen or text == str(current.params.get(config.cursor_param)):
            raise UpstreamError("pagination_loop", "the cursor repeats one already sent")
        self.seen.add(text)
        return PageRequest(self.source.url, {config.cursor_param: cursor})


def _says_more(value: Any) -> bool:
    return value is True or value in ("true", "True", 1)


KINDS: dict[str, type[Paginator]] = {
    "none": Paginator, "next_url": NextUrlPaginator, "link_header": LinkHeaderPaginator,
    "page_number": PageNumberPaginator, "offset": OffsetPaginator, "cursor": CursorPaginator,
}


def paginator_for(source: Source) -> Paginator:
    """Return the paginator of the source's pagination kind."""
    return KINDS[source.pagination.type](source)


class LoopGuard:
    """Fails a batch whose pages repeat: a visited request, or the previous page's records."""

    def __init__(self) -> None:
        self.visited: set[str] = set()
        self.previous: str | None = None

    def visit(self, url: str, body: Any = None) -> None:
        """Refuse to fetch a page (URL and body) already fetched in this batch."""
        key = url if body is None else f"{url}\n{orjson.dumps(body).decode()}"
        if key in self.visited:
            raise UpstreamError("pagination_loop", "the next page is one already fetched")
        self.visited.add(key)

    def check_content(self, records: list[Any]) -> None:
        """Refuse a non-empty page whose records equal the previous page's."""
        if not records:
            return
        digest = hashlib.sha256(orjson.dumps(records)).hexdigest()
        if digest == self.previous:
            raise UpstreamError("pagination_loop", "a page repeats the previous page")
        self.previous = digest
