"""Schema of a stream's `source`: where and how the worker fetches the upstream.

The pagination kinds form a union discriminated by `type`; each model forbids unknown
fields so that a typo in a definition is a 422 at PUT time, not a surprise at fetch time.
The options of incremental fetching, detail requests and CSV are in `config.incremental`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from config import defaults
from config.incremental import CsvOptions, Details, Incremental
from config.source_auth import Auth


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


ParamsIn = Literal["query", "body"]


class NoPagination(_Strict):
    """Fetch a single page."""

    type: Literal["none"] = "none"


class NextUrlPagination(_Strict):
    """Follow the URL found at a dotted path of each response body until it is null."""

    type: Literal["next_url"]
    next_url_path: str = Field(default="next", min_length=1, max_length=256)


class LinkHeaderPagination(_Strict):
    """Follow the RFC 8288 ``Link: <...>; rel="next"`` header until it is absent."""

    type: Literal["link_header"]
    rel: str = Field(default="next", min_length=1, max_length=64)


class PageNumberPagination(_Strict):
    """Send a page number (and optionally a page size) until a page is short or empty."""

    type: Literal["page_number"]
    page_param: str = Field(default="page", min_length=1, max_length=128)
    start_page: int = Field(default=1, ge=0)
    page_size_param: str | None = Field(default=None, max_length=128)
    page_size: int | None = Field(default=None, ge=1, le=100_000)
    total_pages_path: str | None = Field(default=None, max_length=256)
    params_in: ParamsIn = "query"


class OffsetPagination(_Strict):
    """Send offset and limit; stop on a short or empty page or at a total from the body."""

    type: Literal["offset"]
    offset_param: str = Field(default="offset", min_length=1, max_length=128)
    limit_param: str = Field(default="limit", min_length=1, max_length=128)
    limit: int = Field(default=100, ge=1, le=100_000)
    start_offset: int = Field(default=0, ge=0)
    total_path: str | None = Field(default=None, max_length=256)
    params_in: ParamsIn = "query"


class CursorPagination(_Strict):
    """Send back the cursor read from each body until it is absent or `has_more` is false."""

    type: Literal["cursor"]
    cursor_path: str = Field(min_length=1, max_length=256)
    cursor_param: str = Field(default="cursor", min_length=1, max_length=128)
    has_more_path: str | None = Field(default=None, max_length=256)
    params_in: ParamsIn = "query"


Pagination = Annotated[
    NoPagination | NextUrlPagination | LinkHeaderPagination | PageNumberPagination
    | OffsetPagination | CursorPagination, Field(discriminator="type")]


class RateLimit(_Strict):
    """A request budget shared by every worker: per second or per minute (one of them)."""

    requests_per_second: float | None = Field(default=None, gt=0, le=10_000)
    requests_per_minute: float | None = Field(default=None, gt=0, le=600_000)

    @model_validator(mode="after")
    def _one_rate(self) -> RateLimit:
        if (self.requests_per_second is None) == (self.requests_per_minute is None):
            raise ValueError("give exactly one of requests_per_second, requests_per_minute")
        return self

    @property
    def interval_seconds(self) -> float:
        """Return the spacing between two requests, in seconds."""
        if self.requests_per_second is not None:
            return 1.0 / self.requests_per_second
        return 60.0 / (self.requests_per_minute or 1.0)


JsonScalar = str | int | float | bool
Format = Literal["json", "jsonl", "csv"]
# Pagination that reads the next page from the answer's body needs a JSON body.
_BODY_PATHS = ("next_url_path", "cursor_path", "total_path", "total_pages_path")


class Source(_Strict):
    """An upstream HTTP/JSON endpoint, how to authenticate to it and page through it."""

    url: str = Field(min_length=1, max_length=2048)
    method: Literal["GET", "POST"] = "GET"
    params: dict[str, JsonScalar] = Field(default_factory=dict, max_length=64)
    headers: dict[str, str] = Field(
        default_factory=dict, max_length=64,
        description="Plain headers; put secrets in `auth`, which reads them from env vars.")
    body: dict[str, Any] | list[Any] | None = Field(
        default=None, description="JSON body of a POST request.")
    records_path: str = Field(
        default="data", max_length=256,
        description="Dotted path to the records list; '' for a top-level array.")
    pagination: Pagination = Field(default_factory=NoPagination)
    max_pages: int = Field(default=defaults.MAX_PAGES, ge=1, le=1_000_000)
    auth: Auth | None = None
    rate_limit: RateLimit | None = None
    connect_timeout: float = Field(default=5.0, gt=0, le=120)
    read_timeout: float = Field(default=30.0, gt=0, le=600)
    max_response_bytes: int = Field(default=defaults.MAX_RESPONSE_BYTES, ge=1024,
                                    le=1024 * 1024 * 1024)
    max_attempts: int = Field(default=4, ge=1, le=20)
    backoff_initial: float = Field(default=0.5, ge=0, le=60,
                                   description="First retry wait, in seconds (doubles).")
    backoff_max: float = Field(default=30.0, ge=0, le=600,
                               description="Longest single backoff wait, in seconds.")
    max_retry_wait: float = Field(default=300.0, ge=0, le=3600,
                                  description="Most seconds one request may spend waiting.")
    retry_after_max: float = Field(default=120.0, ge=0, le=3600,
                                   description="Cap on a Retry-After or rate-limit wait, s.")
    format: Format = Field(default="json", description="json, jsonl (a record per line) or "
                                                       "csv (a header row, then records).")
    csv: CsvOptions | None = None
    incremental: Incremental | None = None
    details: Details | None = None

    @model_validator(mode="before")
    @classmethod
    def _records_at_top(cls, data: Any) -> Any:
        """A JSON Lines or CSV answer is the list of records: records_path defaults to ''."""
        if isinstance(data, dict) and data.get("format") in ("jsonl", "csv"):
            data = {"records_path": "", **data}
        return data

    @field_validator("format")
    @classmethod
    def _format_fits(cls, value: str, info: ValidationInfo) -> str:
        if value == "json":
            return value
        if info.data.get("records_path"):
            raise ValueError(f"records_path applies to format json only, not {value}")
        pagination = info.data.get("pagination")
        used = [name for name in _BODY_PATHS if getattr(pagination, name, None)]
        if used and pagination is not None:
            raise ValueError(f"pagination {pagination.type} reads {used[0]} from a JSON body; "
                             f"with format {value} use link_header, page_number, offset or "
                             "none")
        return value

    @field_validator("csv")
    @classmethod
    def _csv_needs_csv(cls, value: CsvOptions | None, info: ValidationInfo
                       ) -> CsvOptions | None:
        if value is not None and info.data.get("format") != "csv":
            raise ValueError("csv options apply to format csv only")
        return value

    @field_validator("incremental")
    @classmethod
    def _param_fits(cls, value: Incremental | None, info: ValidationInfo
                    ) -> Incremental | None:
        if value is None or value.param_in != "body":
            return value
        if info.data.get("method") != "POST" or not isinstance(info.data.get("body") or {},
                                                                 dict):
            raise ValueError("param_in 'body' needs method POST and an object body")
        return value

    @field_validator("url")
    @classmethod
    def _http_only(cls, url: str) -> str:
        if not url.lower().startswith(("http://", "https://")):
            raise ValueError("url must start with http:// or https://")
        return url

    @model_validator(mode="after")
    def _body_needs_post(self) -> Source:
        if self.body is not None and self.method != "POST":
            raise ValueError("body is only sent with method POST")
        uses_body = getattr(self.pagination, "params_in", "query") == "body"
        if uses_body and not (self.method == "POST" and isinstance(self.body or {}, dict)):
            raise ValueError("pagination.params_in 'body' needs method POST and an object body")
        return self
