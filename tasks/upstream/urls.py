"""URLs as they may be shown: query secrets and user info redacted, params merged."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from requests.models import PreparedRequest

# Query parameters whose value is a secret whatever the definition says.
SECRET_PARAMS = frozenset({
    "access_token", "api_key", "apikey", "api-key", "auth", "client_secret", "code", "key",
    "password", "secret", "sig", "signature", "token", "refresh_token", "id_token",
})
REDACTED = "REDACTED"


def with_params(url: str, params: Mapping[str, Any] | None) -> str:
    """Return `url` with `params` added to its query, as requests would send it."""
    if not params:
        return url
    prepared = PreparedRequest()
    prepared.prepare_url(url, dict(params))
    return str(prepared.url)


def redact(url: str, secret_names: Iterable[str] = ()) -> str:
    """Return `url` with secret query values and any user:password replaced."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid url>"
    secret = SECRET_PARAMS | {name.lower() for name in secret_names}
    query = [(name, REDACTED if name.lower() in secret else value)
             for name, value in parse_qsl(parts.query, keep_blank_values=True)]
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rsplit('@', 1)[1]}"
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(query, safe="/:"),
                       parts.fragment))
