"""Every error answered as JSON: {"error": {"code", "message", "details"}}.

`ApiError`s carry their own status and code; the store's errors get theirs here, at the
boundary (`STORE_ERRORS`); werkzeug's HTTP errors (404 for an unknown route, 405, 413)
are mapped onto the same shape; a write Redis refused for memory is 503 `store_full`;
anything else is a logged 500 whose answer carries no traceback.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify
from kombu.exceptions import OperationalError
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException

from app.exceptions import (
    ApiError,
    BatchNotFound,
    BatchNotReadable,
    ChangesExpired,
    InvalidCursor,
    NoCompleteBatch,
    StoreBehind,
    StoreError,
    StoreFull,
    StoreUnavailable,
    StreamNotFound,
    ValidationFailed,
    VersionExpired,
    out_of_memory,
)
from app.store.connection import UNAVAILABLE, is_unavailable

log = logging.getLogger(__name__)


# What each store error means to an HTTP client: (status, code). The most specific wins.
STORE_ERRORS: dict[type[StoreError], tuple[int, str]] = {
    StreamNotFound: (404, "stream_not_found"),
    NoCompleteBatch: (404, "no_complete_batch"),
    BatchNotFound: (404, "batch_not_found"),
    BatchNotReadable: (400, "bad_request"),
    InvalidCursor: (400, "bad_request"),
    VersionExpired: (410, "gone"),
    ChangesExpired: (410, "gone"),
    StoreBehind: (503, "store_unavailable"),  # as an unreachable store: retry shortly
}


def store_error_response(error: StoreError) -> tuple[Response, int]:
    """Return the JSON body and status of a store error."""
    status, code = next((STORE_ERRORS[kind] for kind in type(error).__mro__
                         if kind in STORE_ERRORS), (500, "internal_error"))
    body = {"error": {"code": code, "message": error.message, "details": error.details}}
    return jsonify(body), status


def error_response(error: ApiError) -> tuple[Response, int]:
    """Return the JSON body and status of `error`."""
    return jsonify(error.to_dict()), error.status


def _loc(err: Any) -> tuple[Any, ...]:
    """Return the error's location; a bad union tag points at the tag field (`.type`)."""
    if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
        return (*err["loc"], str(err.get("ctx", {}).get("discriminator", "")).strip("'"))
    return tuple(err["loc"])


def validation_error(exc: ValidationError, where: str = "body") -> ValidationFailed:
    """Translate a pydantic error into a 422 naming each bad field."""
    fields = [{"field": ".".join(str(part) for part in _loc(err)) or where,
               "message": err["msg"], "type": err["type"]} for err in exc.errors()]
    first = fields[0]["field"] if fields else where
    return ValidationFailed(f"invalid {where}: {first}: {fields[0]['message']}" if fields
                            else f"invalid {where}", details={"errors": fields})


def init_app(app: Flask) -> None:
    """Register the JSON error handlers."""

    @app.errorhandler(ApiError)
    def _api_error(error: ApiError) -> tuple[Response, int]:
        return error_response(error)

    @app.errorhandler(StoreError)
    def _store_error(error: StoreError) -> tuple[Response, int, dict[str, str]]:
        body, status = store_error_response(error)
        retry = {"Retry-After": str(StoreUnavailable.retry_after_seconds)}
        return body, status, retry if status == 503 else {}

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> tuple[Response, int, dict[str, str]]:
        status = error.code or 500
        code = (error.name or "error").lower().replace(" ", "_")
        if status == 413:  # a stable code for a body over MAX_CONTENT_LENGTH
            code = "payload_too_large"
        body = {"error": {"code": code, "message": error.description or error.name,
                          "details": {}}}
        # Keep what the status needs (Allow on 405, Retry-After on 429), not the HTML type.
        headers = {name: value for name, value in error.get_headers()
                   if name.lower() != "content-type"}
        return jsonify(body), status, headers

    def _store_down(error: Exception) -> tuple[Response, int, dict[str, str]]:
        # Unreachable, or failing over: the client can retry; the log keeps the cause
        # (redis-py names host and port only).
        log.warning("redis unavailable: %s", type(error).__name__)
        unavailable = StoreUnavailable("the data store is unreachable; retry shortly")
        body, status = error_response(unavailable)
        return body, status, {"Retry-After": str(unavailable.retry_after_seconds)}

    for kind in (*UNAVAILABLE, OperationalError):  # OperationalError: the broker's
        app.register_error_handler(kind, _store_down)

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Any:
        if out_of_memory(error):  # from redis-py, a Lua script, or kombu sending a task
            # noeviction: Redis keeps every key and refuses writes until memory is freed.
            log.error("redis refused a write: maxmemory reached")
            return error_response(StoreFull(
                "the data store is full (Redis reached its maxmemory); reads still work, "
                "writes are refused until memory is freed"))
        if is_unavailable(error):  # "Redis Cluster cannot be connected"
            return _store_down(error)
        log.exception("unhandled error", exc_info=error)
        body = {"error": {"code": "internal_error", "message": "internal error",
                          "details": {}}}
        return jsonify(body), 500
