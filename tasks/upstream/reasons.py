"""The upstream's own words in a failure reason: short, plain and without secrets.

When the upstream refuses a request, its answer usually says why ("Bad credentials",
``invalid_client``, a GraphQL ``errors`` list). `words` reads the start of that answer and
returns the part worth showing: the usual error fields of a JSON answer, else the text
(without its tags, for HTML), on one line, at most `MAX_WORDS` characters, with every
secret the stream's auth reads from the environment, and anything shaped like a token
or password, replaced by ``REDACTED``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
import requests

from app.redaction import REDACTED

MAX_WORDS = 300
READ_BYTES = 4096
# Fields of a JSON error answer that carry the upstream's explanation, in order.
ERROR_FIELDS = ("error", "error_description", "message", "detail", "title", "errors",
                "error_message", "reason")
_SECRET_SHAPES = re.compile(
    r"(?i)(bearer\s+|basic\s+|(?:access_token|refresh_token|id_token|token|api[_-]?key|"
    r"apikey|client_secret|password|secret|signature)[\"']?\s*[:=]\s*[\"']?)"
    r"[^\s\"',;&}]+")
_TAGS = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")


def secrets_of(auth: Any, environ: Mapping[str, str] | None = None) -> list[str]:
    """Return the secret values an auth model reads from the environment."""
    if auth is None:
        return []
    env = os.environ if environ is None else environ
    names = [value for field, value in auth if field.endswith("_env") and value]
    return [env[name] for name in names if env.get(name)]


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Return `text` with the given secrets and token-shaped values replaced."""
    for secret in sorted((s for s in secrets if len(s) >= 4), key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return _SECRET_SHAPES.sub(lambda match: match.group(1) + REDACTED, text)


def excerpt(raw: bytes, content_type: str = "", secrets: Iterable[str] = ()) -> str:
    """Return the worth-showing start of a body: error fields of JSON, else plain text."""
    text = ""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        body = None
        text = raw.decode("utf-8", "replace")
        if "html" in content_type.lower() or text.lstrip().lower().startswith(
                ("<!doctype", "<html")):
            text = _TAGS.sub(" ", text)
    if body is not None:
        text = json_words(body) or raw.decode("utf-8", "replace")
    text = _SPACE.sub(" ", text).strip()
    text = redact(text, secrets)
    return text if len(text) <= MAX_WORDS else text[:MAX_WORDS - 3] + "..."


def json_words(body: Any) -> str:
    """Return the error fields of a JSON answer as one line, or ''."""
    if not isinstance(body, dict):
        return ""
    parts = []
    for name in ERROR_FIELDS:
        value = body.get(name)
        if value not in (None, "", [], {}):
            shown = value if isinstance(value, str) else orjson.dumps(value).decode()
            parts.append(f"{name}: {shown}")
    return "; ".join(parts)


def words(response: requests.Response, secrets: Iterable[str] = ()) -> str:
    """Return ': <the upstream's words>' for a failed response, or '' when it said none."""
    try:
        raw = next(response.iter_content(READ_BYTES), b"")
    except (requests.RequestException, StopIteration, RuntimeError):
        return ""
    shown = excerpt(raw[:READ_BYTES], response.headers.get("Content-Type", ""), secrets)
    return f": {shown}" if shown else ""
