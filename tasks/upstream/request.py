"""One page request: guarded, authenticated, throttled, retried, size-capped, parsed.

`PageFetcher.fetch` returns the parsed body (`formats`) and Link targets of one page, or raises
an `UpstreamError` whose kind says what went wrong; `requests` errors are translated here
(`translated`) so nothing else sees them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import requests
from urllib3.exceptions import ReadTimeoutError

from app.exceptions import UpstreamError
from app.hosts import HostPolicy
from app.ops.metrics import observe_upstream
from config.source import Source
from tasks.upstream import formats, reasons
from tasks.upstream.auth import Authenticator
from tasks.upstream.retry import RetryHints, run_with_retries
from tasks.upstream.throttle import Throttle
from tasks.upstream.urls import same_origin, with_params, without_params

CHUNK_BYTES = 64 * 1024


@contextmanager
def translated() -> Iterator[None]:
    """Turn requests' errors into UpstreamError at the boundary."""
    try:
        yield
    except requests.Timeout as exc:
        raise UpstreamError("timeout", f"upstream timed out: {type(exc).__name__}") from None
    except requests.exceptions.InvalidSchema:
        raise UpstreamError("forbidden_host", "a redirect left http/https") from None
    except requests.TooManyRedirects:
        raise UpstreamError("http_status", "too many redirects") from None
    except requests.ConnectionError as exc:
        if exc.args and isinstance(exc.args[0], ReadTimeoutError):
            raise UpstreamError("timeout", "upstream timed out: ReadTimeout") from None
        raise UpstreamError("connection", f"cannot reach upstream: {type(exc).__name__}"
                            ) from None
    except requests.RequestException as exc:
        raise UpstreamError("connection", f"cannot reach upstream: {type(exc).__name__}"
                            ) from None


@dataclass(frozen=True)
class Answer:
    """A successful page response: parsed body and Link targets by rel."""

    body: Any
    links: dict[str, str]


class PageFetcher:
    """Fetches pages of one source with its session, auth, throttle and retry policy."""

    def __init__(self, source: Source, *, session: requests.Session, policy: HostPolicy,
                 auth: Authenticator, throttle: Throttle,
                 sleep: Callable[[float], None]) -> None:
        self.source = source
        self.session = session
        self.policy = policy
        self.auth = auth
        self.throttle = throttle
        self.sleep = sleep

    def fetch(self, url: str, query: dict[str, Any], body: Any) -> Answer:
        """Return the parsed answer of one page, retried per the source's policy.

        The source's credentials and headers go only to the origin of its `url`; a page on
        another origin (a next link elsewhere) is asked for without them.
        """
        self.policy.check_url(with_params(url, query), resolve=None)
        if not same_origin(url, self.source.url):
            url = without_params(url, self.auth.secret_params)
            query = {name: value for name, value in query.items()
                     if name not in self.auth.secret_params}
        hints = RetryHints()
        status, raw, links, content_type = run_with_retries(
            lambda: self._attempt(url, query, body, hints), self.source, hints,
            sleep=self.sleep)
        return Answer(formats.parse(self.source, raw, content_type, status), links)

    def _attempt(self, url: str, query: dict[str, Any], body: Any, hints: RetryHints
                 ) -> tuple[int, bytes, dict[str, str], str]:
        self.throttle.before_request()
        response = self._timed(url, query, body)
        if (response.status_code == 401 and same_origin(url, self.source.url)
                and self.auth.refresh()):
            response.close()
            response = self._timed(url, query, body)
        with response:
            hints.retry_after = self.throttle.learn(response.status_code, response.headers)
            if response.status_code >= 400:
                kind = "auth" if response.status_code == 401 else "http_status"
                said = reasons.words(response, reasons.secrets_of(self.source.auth))
                raise UpstreamError(kind, f"upstream answered {response.status_code}{said}",
                                    status=response.status_code)
            links = {rel: str(link.get("url")) for rel, link in response.links.items()
                     if link.get("url")}
            return (response.status_code, self._read(response), links,
                    response.headers.get("Content-Type", ""))

    def _timed(self, url: str, query: dict[str, Any], body: Any) -> requests.Response:
        """Send the request and record its status (or error kind) and time to headers."""
        started = time.monotonic()
        try:
            response = self._send(url, query, body)
        except UpstreamError as exc:
            observe_upstream(self.throttle.stream, exc.kind, time.monotonic() - started)
            raise
        observe_upstream(self.throttle.stream, response.status_code,
                         time.monotonic() - started)
        return response

    def _send(self, url: str, query: dict[str, Any], body: Any) -> requests.Response:
        headers = {"Accept": formats.ACCEPT[self.source.format]}
        params = dict(query)
        if same_origin(url, self.source.url):
            headers.update(self.source.headers)
            self.auth.apply(headers, params)
        timeout = (self.source.connect_timeout, self.source.read_timeout)
        with translated():
            return self.session.request(self.source.method, url, params=params, json=body,
                                        headers=headers, timeout=timeout, stream=True)

    def _read(self, response: requests.Response) -> bytes:
        limit = self.source.max_response_bytes
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            raise UpstreamError("response_too_large", f"upstream answer is {declared} bytes, "
                                f"over max_response_bytes {limit}",
                                status=response.status_code)
        chunks, size = [], 0
        with translated():
            for chunk in response.iter_content(CHUNK_BYTES):
                size += len(chunk)
                if size > limit:
                    raise UpstreamError("response_too_large", "upstream answer is over "
                                        f"max_response_bytes {limit}",
                                        status=response.status_code)
                chunks.append(chunk)
        return b"".join(chunks)
