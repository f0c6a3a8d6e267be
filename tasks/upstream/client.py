"""Pages of records from an upstream, over one `requests.Session` with retries."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from app.exceptions import UpstreamError
from app.paths import get_path
from config.source import Source

RETRY_STATUSES = (429, 500, 502, 503, 504)


@dataclass(frozen=True)
class Page:
    """One upstream page: its 1-based number, the URL fetched and its records."""

    number: int
    url: str
    records: list[Any]


def make_session(source: Source) -> requests.Session:
    """Return a session that retries connection errors, 5xx and 429 with backoff."""
    retry = Retry(total=source.max_attempts - 1, connect=source.max_attempts - 1,
                  read=source.max_attempts - 1, status=source.max_attempts - 1,
                  backoff_factor=0.5, backoff_jitter=0.25, backoff_max=30,
                  status_forcelist=RETRY_STATUSES, allowed_methods=None,
                  respect_retry_after_header=True, raise_on_status=False)
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = "data-streams/0.1"
    return session


@contextmanager
def translated(url: str, page: int, attempts: int) -> Iterator[None]:
    """Turn requests' errors into UpstreamError at the boundary."""
    try:
        yield
    except requests.Timeout as exc:
        raise UpstreamError("timeout", f"upstream timed out: {type(exc).__name__}",
                            page=page, attempts=attempts, url=url) from None
    except requests.exceptions.RetryError:
        raise UpstreamError("http_status", "upstream kept failing after retries",
                            page=page, attempts=attempts, url=url) from None
    except requests.RequestException as exc:
        raise UpstreamError("connection", f"cannot reach upstream: {type(exc).__name__}",
                            page=page, attempts=attempts, url=url) from None


class Pager:
    """Iterates over the pages of `source`; `stop_reason` tells why it stopped."""

    def __init__(self, source: Source, *, session: requests.Session | None = None) -> None:
        self.source = source
        self.session = session or make_session(source)
        self.stop_reason: str | None = None

    def __iter__(self) -> Iterator[Page]:
        url: str | None = self.source.url
        seen: set[str] = set()
        number = 0
        while url is not None:
            if number >= self.source.max_pages:
                self.stop_reason = "max_pages"
                return
            if url in seen:
                raise UpstreamError("pagination_loop", "next link repeats a visited page",
                                    page=number + 1, url=url)
            seen.add(url)
            number += 1
            body = self._get_json(url, number)
            yield Page(number=number, url=url, records=self._records(body, url, number))
            url = self._next_url(body)
        self.stop_reason = "no_next"

    def _get_json(self, url: str, number: int) -> Any:
        attempts = self.source.max_attempts
        with translated(url, number, attempts):
            response = self.session.get(
                url, timeout=(self.source.connect_timeout, self.source.read_timeout))
        if response.status_code >= 400:
            raise UpstreamError("http_status", f"upstream answered {response.status_code}",
                                status=response.status_code, page=number,
                                attempts=attempts, url=url)
        try:
            return response.json()
        except ValueError:
            raise UpstreamError("invalid_json", "upstream answer is not JSON",
                                status=response.status_code, page=number, url=url) from None

    def _records(self, body: Any, url: str, number: int) -> list[Any]:
        records = get_path(body, self.source.records_path, None)
        if not isinstance(records, list):
            raise UpstreamError("records_path", f"records_path {self.source.records_path!r} "
                                "is missing or not a list", page=number, url=url)
        return records

    def _next_url(self, body: Any) -> str | None:
        pagination = self.source.pagination
        if pagination.type != "next_url":
            return None
        next_url = get_path(body, pagination.next_url_path, None)
        return str(next_url) if next_url else None
