"""Schema of a stream's `source`: where and how the worker fetches the upstream.

The pagination kinds form a union discriminated by `type`; each model forbids unknown
fields so that a typo in a definition is a 422 at PUT time, not a surprise at fetch time.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from config import defaults


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NoPagination(_Strict):
    """Fetch a single page."""

    type: Literal["none"] = "none"


class NextUrlPagination(_Strict):
    """Follow the URL found at a dotted path of each response body until it is null."""

    type: Literal["next_url"]
    next_url_path: str = "next"


Pagination = Annotated[NoPagination | NextUrlPagination, Field(discriminator="type")]


class Source(_Strict):
    """An upstream HTTP/JSON endpoint and how to page through it."""

    url: str = Field(min_length=1, max_length=2048)
    records_path: str = Field(
        default="data", max_length=256,
        description="Dotted path to the records list; '' for a top-level array.")
    pagination: Pagination = Field(default_factory=NoPagination)
    max_pages: int = Field(default=defaults.MAX_PAGES, ge=1, le=1_000_000)
    connect_timeout: float = Field(default=5.0, gt=0, le=120)
    read_timeout: float = Field(default=30.0, gt=0, le=600)
    max_attempts: int = Field(default=4, ge=1, le=20)

    @field_validator("url")
    @classmethod
    def _http_only(cls, url: str) -> str:
        if not url.lower().startswith(("http://", "https://")):
            raise ValueError("url must start with http:// or https://")
        return url
