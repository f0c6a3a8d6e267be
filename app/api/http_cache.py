"""HTTP caching of the data API: ETags, 304 Not Modified, Cache-Control, Link headers.

A published version never changes, so an answer about it is named by the version and the
query that shaped it (`strong_tag`): a strong ETag that needs no hashing of the body, and
an `If-None-Match` that matches is answered 304 before any record is encoded (for an
export or the change feed, before any is read).
Answers about "the current version" may change with the next publish (`no-cache`: keep,
but revalidate); answers about a pinned version (``?version=``, a cursor) never do
(``max-age=PINNED_MAX_AGE_SECONDS, immutable``). `If-None-Match` is compared weakly
(RFC 9110 13.1.2) and ignores the content-coding suffix that compression appends to a
strong tag (``"v7-...:gzip"``, `app.api.compression`): the same data in another coding.

Paged answers carry RFC 8288 ``Link: <url>; rel="next"`` (`link_next`): the request's own
URL with ``cursor`` set to the body's ``next_cursor``, so a client can page by headers alone.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from typing import Any
from urllib.parse import urlencode

import orjson
from flask import Response, current_app, jsonify, request
from pydantic import BaseModel, Field
from werkzeug.sansio.utils import get_current_url

# Content-coding suffixes a compressed answer's strong ETag carries (`compression`).
CODING_SUFFIXES = (":gzip", ":br", ":zstd", ":deflate")
# werkzeug's `request.base_url` re-quotes the URL on every call (a tenth of a page's cost);
# the same scheme, host, root and path always give the same URL, so keep the last few.
_base_url = lru_cache(maxsize=256)(get_current_url)


def strong_tag(version: int, *query: object) -> str:
    """Return the ETag value of an answer about `version` shaped by `query`."""
    digest = hashlib.blake2b(repr(query).encode(), digest_size=8).hexdigest()
    return f"v{version}-{digest}"


def weakly_tagged(body: dict[str, Any]) -> Response:
    """Answer a description that changes (a stream's state) with a weak ETag of it, or 304.

    The tag digests the whole description, so it changes with the state, the current
    version, the batch in flight and its progress; it is weak because it names what the
    answer says, not its bytes (which also differ by coding).
    """
    tag = hashlib.blake2b(orjson.dumps(body, option=orjson.OPT_SORT_KEYS, default=str),
                          digest_size=8).hexdigest()
    unchanged = not_modified(tag, pinned=False, weak=True)
    if unchanged is not None:
        return unchanged
    return tagged(jsonify(body), tag, pinned=False, weak=True)


def _matched(tag: str) -> str | None:
    """Return the tag of If-None-Match that names `tag` in some coding, or None."""
    if "HTTP_IF_NONE_MATCH" not in request.environ:
        return None  # most requests: no header to parse
    header = request.if_none_match
    if not header:
        return None
    if header.star_tag:
        return tag
    for sent in header.as_set(include_weak=True):
        base = next((sent[: -len(suffix)] for suffix in CODING_SUFFIXES
                     if sent.endswith(suffix)), sent)
        if base == tag:
            return sent
    return None


def cache_control(response: Response, *, pinned: bool) -> Response:
    """Say what a cache may keep: a pinned version for long, the current one revalidated."""
    # The usual case: no header to merge with (`getlist`, as `in` raises and catches).
    if not response.headers.getlist("Cache-Control"):
        response.headers["Cache-Control"] = (
            f"max-age={current_app.config['PINNED_MAX_AGE_SECONDS']}, immutable" if pinned
            else "no-cache")
        return response
    if pinned:
        response.cache_control.max_age = current_app.config["PINNED_MAX_AGE_SECONDS"]
        response.cache_control.immutable = True
    else:
        response.cache_control.no_cache = True
    return response


def not_modified(tag: str, *, pinned: bool, weak: bool = False,
                 headers: dict[str, str] | None = None) -> Response | None:
    """Return a 304 if the request's If-None-Match names `tag`, else None.

    The 304 repeats the validator the client sent (with its coding suffix): that is the
    ETag its stored 200 carries, so the client's cache can match them.
    """
    sent = _matched(tag)
    if sent is None:
        return None
    response = Response(status=304, headers=headers)
    response.set_etag(sent, weak=weak)
    return cache_control(response, pinned=pinned)


def tagged(response: Response, tag: str, *, pinned: bool, weak: bool = False) -> Response:
    """Give a 200 its ETag and Cache-Control."""
    response.set_etag(tag, weak=weak)
    return cache_control(response, pinned=pinned)


def link_next(response: Response, next_cursor: str | None) -> Response:
    """Add ``Link: <this URL with cursor=next_cursor>; rel="next"`` when there is a next page."""
    if next_cursor:
        query = {key: value for key, value in request.args.items() if key != "cursor"}
        base = _base_url(request.scheme, request.host, request.root_path, request.path)
        url = f"{base}?{urlencode({**query, 'cursor': next_cursor})}"
        response.headers.add("Link", f'<{url}>; rel="next"')
    return response


class ConditionalHeaders(BaseModel):
    """Request headers of a view that tags its answers (for the OpenAPI document)."""

    if_none_match: str | None = Field(default=None, alias="If-None-Match", description=(
        "ETags of answers the client holds: an unchanged answer is a 304 with no body."))


_CACHE_HEADERS = {
    "ETag": {"description": "Strong: the version and the query (suffixed with the coding "
                            "when compressed); weak on GET /streams/<name>.",
             "schema": {"type": "string"}},
    "Cache-Control": {"required": True, "schema": {"type": "string"}, "description": (
        "no-cache for the current version; max-age=..., immutable for a pinned one.")},
}
_LINK_HEADER = {"Link": {"description": 'RFC 8288 <url>; rel="next" when there is a next '
                                        "page (the URL carries cursor=next_cursor).",
                         "schema": {"type": "string"}}}


def describe(document: dict[str, Any]) -> dict[str, Any]:
    """Add the caching headers (tagged views) and Link (paged views) to the document."""
    for operations in document["paths"].values():
        for operation in operations.values():
            answers = operation.get("responses", {})
            if "304" in answers:
                for status in ("200", "304"):
                    answers[status].setdefault("headers", {}).update(_CACHE_HEADERS)
            if any(parameter.get("in") == "query" and parameter.get("name") == "cursor"
                   for parameter in operation.get("parameters", [])):
                answers["200"].setdefault("headers", {}).update(_LINK_HEADER)
    return document
