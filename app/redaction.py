"""What can carry a secret, and how it is shown redacted: names, URLs, definitions.

One rule decides which names are secret (`secret_name`): a query parameter, header or
field whose name says token, secret, password, key, signature, session, cookie, auth,
credential or private (``api_token``, ``private_token``, ``access_token``, ``sig``,
``X-Amz-Signature``, ``X-Amz-Security-Token``, ``client_secret``, ``code``, ...). The log
filter (`app.ops.logs`), the URLs the worker shows in errors (`tasks.upstream.urls`) and
the definition answered to readers (`definition`) all use it.

A definition is answered with the values that can carry a secret replaced by
``REDACTED``: user info of `source.url`, `details.url` and `auth.token_url`, their secret
query values, secret-named `params`, `auth.extra_params` and body or custom-middleware
option fields, and the value of every header but a few plain ones. The names of secret environment
variables (``*_env``) are not secrets and stay visible.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

REDACTED = "REDACTED"
# A name is secret when it contains one of these words, or one of the short ones as a
# whole part of it (`key`, `x-api-key`, `sig`; not `monkey` or `design`).
SECRET_NAME = re.compile(
    r"token|secret|passw|pwd|credential|private|signature|session|cookie|assertion"
    r"|api-?_?key|apikey"
    r"|authori[sz]|authent|auth(?!or)|(?:^|[-_.])(?:key|sig|code)(?:$|[-_.])", re.IGNORECASE)
# Headers whose values say how to answer, never who asks: shown as they are.
PLAIN_HEADERS = frozenset({"accept", "accept-encoding", "accept-language", "cache-control",
                           "content-type", "pragma", "user-agent"})


def secret_name(name: str) -> bool:
    """Tell whether a parameter, header or field called `name` can carry a secret."""
    return bool(SECRET_NAME.search(name))


def url(text: str, secret_names: Iterable[str] = ()) -> str:
    """Return `text` with user info and secret query values replaced by REDACTED."""
    try:
        parts = urlsplit(text)
    except ValueError:
        return "<invalid url>"
    named = {name.lower() for name in secret_names}
    query = [(name, REDACTED if secret_name(name) or name.lower() in named else value)
             for name, value in parse_qsl(parts.query, keep_blank_values=True)]
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rsplit('@', 1)[1]}"
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(query, safe="/:"),
                       parts.fragment))


def fields(value: Any) -> Any:
    """Return a JSON value with the values of secret-named object fields redacted."""
    if isinstance(value, Mapping):
        return {key: REDACTED if secret_name(str(key)) and not str(key).endswith("_env")
                else fields(item) for key, item in value.items()}
    if isinstance(value, list):
        return [fields(item) for item in value]
    return value


def headers(values: Mapping[str, str]) -> dict[str, str]:
    """Return headers with every value but the plain ones' redacted."""
    return {name: value if name.lower() in PLAIN_HEADERS else REDACTED
            for name, value in values.items()}


def definition(dumped: dict[str, Any]) -> dict[str, Any]:
    """Return a dumped stream definition as readers may see it (secret material hidden)."""
    shown = dict(dumped)
    source = dict(shown.get("source") or {})
    auth = dict(source.get("auth") or {})
    query_key = [auth["name"]] if auth.get("type") == "api_key" and auth.get("in") == "query" \
        else []
    if source.get("url"):
        source["url"] = url(source["url"], query_key)
    source["params"] = {name: REDACTED if secret_name(name) or name in query_key else value
                        for name, value in (source.get("params") or {}).items()}
    source["headers"] = headers(source.get("headers") or {})
    source["body"] = fields(source.get("body"))
    if (source.get("details") or {}).get("url"):
        source["details"] = {**source["details"],
                             "url": url(source["details"]["url"], query_key)}
    if auth:
        if auth.get("token_url"):
            auth["token_url"] = url(auth["token_url"])
        if "extra_params" in auth:
            auth["extra_params"] = fields(auth["extra_params"])
        source["auth"] = auth
    shown["source"] = source
    shown["middleware"] = [
        {**spec, "options": fields(spec.get("options") or {})} if spec.get("type") == "custom"
        else spec for spec in shown.get("middleware") or []]
    return shown
