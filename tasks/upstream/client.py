"""Pages of records from an upstream: the pager that ties pagination, guard and fetcher."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import requests

from app.exceptions import UpstreamError
from app.hosts import HostPolicy
from app.records import get_path
from app.redaction import url as redact
from app.store.oauth_tokens import TokenCache
from app.store.ratelimit import RateLimits
from config import defaults
from config.source import Source
from tasks.upstream import bodies
from tasks.upstream.auth import Authenticator, secret_params
from tasks.upstream.pagination import LoopGuard, PageAnswer, PageRequest, paginator_for
from tasks.upstream.reasons import json_words
from tasks.upstream.request import PageFetcher
from tasks.upstream.throttle import Throttle
from tasks.upstream.transport import make_session
from tasks.upstream.urls import with_params


@dataclass(frozen=True)
class Page:
    """One upstream page: its 1-based number, the URL fetched (secrets redacted), records."""

    number: int
    url: str
    records: list[Any]


class Pager:
    """Iterates over the pages of `source`; `stop_reason` tells why it stopped.

    `rate_limits` and `tokens` (parts of the store) share the rate limit and the OAuth2
    token of `stream` with the other workers; `allowed_hosts` is ``ALLOWED_SOURCE_HOSTS``;
    `secret_prefix` is ``SECRET_ENV_PREFIX``, the prefix every secret's variable must have.
    """

    def __init__(self, source: Source, *, session: requests.Session | None = None,
                 rate_limits: RateLimits | None = None, tokens: TokenCache | None = None,
                 stream: str | None = None, allowed_hosts: Iterable[str] = (),
                 environ: Mapping[str, str] | None = None,
                 secret_prefix: str = defaults.SECRET_ENV_PREFIX,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.source = source
        self.stop_reason: str | None = None
        policy = HostPolicy(allowed_hosts)
        self.session = session or make_session(policy, source.url, secret_params(source.auth))
        self.auth = Authenticator(source.auth, session=self.session, policy=policy,
                                  stream=stream or "", tokens=tokens if stream else None,
                                  timeout=(source.connect_timeout, source.read_timeout),
                                  environ=environ, secret_prefix=secret_prefix)
        self.fetcher = PageFetcher(source, session=self.session, policy=policy,
                                   auth=self.auth, throttle=Throttle(source, rate_limits, stream,
                                                                     sleep=sleep),
                                   sleep=sleep)

    def __iter__(self) -> Iterator[Page]:
        paginator = paginator_for(self.source)
        guard = LoopGuard()
        request: PageRequest | None = paginator.first()
        number = 0
        while request is not None:
            number += 1
            query, body = self._split(request, paginator.keeps_params)
            shown = redact(with_params(request.url, query), self.auth.secret_params)
            try:
                guard.visit(with_params(request.url, query), body)
                answer = self.fetcher.fetch(request.url, query, body)
                records = self._records(answer.body)
                guard.check_content(records)
                request = paginator.next(request, PageAnswer(answer.body, records,
                                                             answer.links))
            except UpstreamError as exc:
                exc.page = exc.page or number
                exc.url = exc.url or shown
                raise
            yield Page(number=number, url=shown, records=records)
            if request is not None and number >= self.source.max_pages:
                self.stop_reason = "max_pages"
                return
        self.stop_reason = paginator.stop_reason or "no_next"

    def _split(self, request: PageRequest, keeps_params: bool
               ) -> tuple[dict[str, Any], Any]:
        """Return the query params and JSON body of a page request."""
        source = self.source
        query: dict[str, Any] = dict(source.params) if keeps_params or request.first else {}
        body = source.body
        if getattr(source.pagination, "params_in", "query") == "body":
            body = bodies.place(body, request.params)
        else:
            query.update(request.params)
        return query, body

    def _records(self, body: Any) -> list[Any]:
        records = get_path(body, self.source.records_path, None)
        if not isinstance(records, list):
            where = repr(self.source.records_path) if self.source.records_path else "(top)"
            said = json_words(body)  # e.g. a GraphQL answer's "errors"
            raise UpstreamError("records_path", f"records_path {where} is missing or not a "
                                "list" + (f"; the answer says {said}" if said else ""))
        return records
