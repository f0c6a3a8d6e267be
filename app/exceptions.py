"""Every error data-streams raises, in one tree.

    DataStreamsError
    ├── StoreError                raised by the store and the commands, named for what
    │   │                         happened; app.api.error_handlers maps each to a status
    │   ├── StreamNotFound        the stream is not defined              (404)
    │   ├── NoCompleteBatch       no version has been published yet      (404)
    │   ├── BatchNotFound         no batch with that version             (404)
    │   ├── BatchNotReadable      the batch exists but is not complete   (400)
    │   ├── InvalidCursor         a cursor the store did not write       (400)
    │   ├── VersionExpired        the version left the history or expired (410)
    │   ├── StoreBehind           the store's current version is older than one this
    │   │                         process served (a failover lost a publish)  (503)
    │   ├── ChangesExpired        the change sets since a version are gone (410)
    │   └── BaseVersionGone       an incremental batch's base version expired
    ├── ApiError                  answered to HTTP clients as {"error": {code, message, details}}
    │   ├── BadRequest            400 bad_request
    │   ├── Unauthorized          401 unauthorized
    │   ├── Forbidden             403 forbidden
    │   ├── NotFound              404 not_found
    │   ├── Conflict              409 conflict
    │   ├── UnsupportedMediaType  415 unsupported_media_type
    │   ├── ValidationFailed      422 validation_failed
    │   ├── StoreUnavailable      503 store_unavailable (Redis unreachable; Retry-After)
    │   └── StoreFull             503 store_full (Redis refuses writes: maxmemory reached)
    └── UpstreamError             a fetch failed; `kind` is machine-readable
        ├── MiddlewareError       kind "middleware": names the middleware (index, type)
        └── BadRecord             kind "bad_record": names the page and the position
        (kinds: http_status, timeout, connection, invalid_json, records_path,
         pagination_loop, incomplete, auth, forbidden_host, response_too_large, middleware,
         bad_record, cancelled, lock_lost, worker_lost, staging_expired, poison, internal;
         and from the store: too_large, store_full, missing_key)

Third-party errors (requests, redis) are translated at the boundary that calls them, so
callers only ever see these; `out_of_memory` tells a Redis write refused for memory.
"""

from __future__ import annotations

from typing import Any

from redis.exceptions import OutOfMemoryError, ResponseError


class DataStreamsError(Exception):
    """Base of every data-streams error."""


class StoreError(DataStreamsError):
    """An answer of the store that is not data: what was asked for is not there (now)."""

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


class StreamNotFound(StoreError):
    """The stream is not defined."""

    def __init__(self, name: str) -> None:
        super().__init__(f"stream {name!r} does not exist", details={"stream": name})


class NoCompleteBatch(StoreError):
    """The stream has never published a version."""

    def __init__(self, name: str) -> None:
        super().__init__(f"stream {name!r} has no complete batch yet; start it and retry",
                         details={"stream": name})


class BatchNotFound(StoreError):
    """The stream has no batch with this version."""

    def __init__(self, name: str, version: int) -> None:
        super().__init__(f"stream {name!r} has no batch {version}",
                         details={"stream": name, "version": version})


class BatchNotReadable(StoreError):
    """The batch exists but its records are not served (running, failed, ...)."""


class InvalidCursor(StoreError):
    """A cursor the store did not write (or no longer understands)."""


class VersionExpired(StoreError):
    """The version left the history, or expired while it was read."""


class StoreBehind(StoreError):
    """The store answers an older current version than this process already served."""

    def __init__(self, name: str, version: int, served: int) -> None:
        super().__init__(f"the data store answers version {version} of {name!r}, older "
                         f"than version {served} it served before (a failover); retry "
                         "shortly", details={"stream": name})


class ChangesExpired(StoreError):
    """The change sets since a version are no longer all kept."""


class BaseVersionGone(StoreError):
    """The version an incremental batch was merged onto expired before the merge ended."""


class ApiError(DataStreamsError):
    """An error answered to an HTTP client with `status` and a stable `code`."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}

    def to_dict(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class BadRequest(ApiError):
    status, code = 400, "bad_request"


class Unauthorized(ApiError):
    status, code = 401, "unauthorized"


class Forbidden(ApiError):
    status, code = 403, "forbidden"


class NotFound(ApiError):
    status, code = 404, "not_found"


class Conflict(ApiError):
    status, code = 409, "conflict"


class UnsupportedMediaType(ApiError):
    status, code = 415, "unsupported_media_type"


class ValidationFailed(ApiError):
    status, code = 422, "validation_failed"


class StoreUnavailable(ApiError):
    status, code = 503, "store_unavailable"
    retry_after_seconds = 5


class StoreFull(ApiError):
    status, code = 503, "store_full"


def out_of_memory(error: BaseException | None) -> bool:
    """Tell whether Redis refused a write because it reached its maxmemory: an OOM reply,
    also from inside a Lua script (redis-py reports it as a plain error) or as the cause
    of another error (kombu wraps it in its OperationalError)."""
    for _ in range(5):
        if isinstance(error, OutOfMemoryError) or (
                isinstance(error, ResponseError) and "OOM command not allowed" in str(error)):
            return True
        if error is None:
            return False
        error = error.__cause__ or error.__context__
    return False


class UpstreamError(DataStreamsError):
    """A fetch failed. `to_dict()` is what a failed batch keeps as its `error`."""

    def __init__(self, kind: str, message: str, *, status: int | None = None,
                 page: int | None = None, attempts: int | None = None,
                 url: str | None = None, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status
        self.page = page
        self.attempts = attempts
        self.url = url
        self.details = details or {}

    def to_dict(self) -> dict[str, Any]:
        fields = {"kind": self.kind, "message": self.message, "status": self.status,
                  "page": self.page, "attempts": self.attempts, "url": self.url,
                  **self.details}
        return {key: value for key, value in fields.items() if value is not None}


class MiddlewareError(UpstreamError):
    """A middleware raised or refused the batch; the error names it by index and type."""

    def __init__(self, index: int, type_: str, message: str, *,
                 page: int | None = None) -> None:
        super().__init__("middleware", f"middleware {index} ({type_}): {message}", page=page)
        self.index = index
        self.type = type_

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "middleware": {"index": self.index, "type": self.type}}


class BadRecord(UpstreamError):
    """A record the store cannot hold (its `order_by` value is no finite number or time).

    `position` counts from 1 within page `page`; the whole batch fails with it.
    """

    def __init__(self, page: int, position: int, message: str) -> None:
        super().__init__("bad_record", f"page {page}, record {position}: {message}", page=page)
        self.position = position

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "position": self.position}
