"""URLs as the worker sends them: params merged, and the origin credentials belong to.

How a URL is shown (secrets redacted) is `app.redaction.url`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from requests.models import PreparedRequest

DEFAULT_PORTS = {"http": 80, "https": 443}


def with_params(url: str, params: Mapping[str, Any] | None) -> str:
    """Return `url` with `params` added to its query, as requests would send it."""
    if not params:
        return url
    prepared = PreparedRequest()
    prepared.prepare_url(url, dict(params))
    return str(prepared.url)


def without_params(url: str, names: Iterable[str]) -> str:
    """Return `url` without the query parameters called one of `names` (any case)."""
    drop = {name.lower() for name in names}
    parts = urlsplit(url)
    if not drop or not parts.query:
        return url
    kept = [(name, value) for name, value in parse_qsl(parts.query, keep_blank_values=True)
            if name.lower() not in drop]
    return urlunsplit(parts._replace(query=urlencode(kept)))


def origin(url: str) -> tuple[str, str, int] | None:
    """Return the (scheme, host, port) origin of `url` (RFC 6454), or None if it has none."""
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        port = parts.port or DEFAULT_PORTS.get(scheme)
    except ValueError:
        return None
    if not parts.hostname or port is None:
        return None
    return scheme, parts.hostname.rstrip(".").lower(), port


def same_origin(url: str, other: str) -> bool:
    """Tell whether two URLs share one origin: scheme, host and port."""
    mine = origin(url)
    return mine is not None and mine == origin(other)
