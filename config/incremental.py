"""Schema of `source.incremental`, `source.details` and `source.csv`: what real APIs need.

`incremental` fetches only what changed since the cursor of the published version and
upserts it by key; `details` fetches one more request per record and merges its answer;
`csv` tunes the CSV format. `fingerprint` names what a stored version was built from, so
a definition that changed in a way that matters starts over with a full batch.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# A placeholder of a details URL template: a dotted path between braces, e.g. {owner.id}.
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
CursorValue = str | int | float


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FullRefreshEvery(_Strict):
    """How often an incremental stream runs a full batch: every N batches or S seconds."""

    batches: int | None = Field(default=None, ge=1, le=1_000_000)
    seconds: int | None = Field(default=None, ge=1, le=366 * 24 * 3600)

    @model_validator(mode="after")
    def _one_of(self) -> FullRefreshEvery:
        if (self.batches is None) == (self.seconds is None):
            raise ValueError("give exactly one of batches, seconds")
        return self


class Incremental(_Strict):
    """Fetch only records changed since the cursor of the published version."""

    cursor_path: str = Field(
        min_length=1, max_length=256,
        description="Dotted path, in each upstream record, to the value that orders changes "
                    "(a number or an ISO-8601 time), e.g. updated_at.")
    param: str = Field(
        min_length=1, max_length=256,
        description="Name of the query parameter, header or (dotted) body field that "
                    "carries the last cursor value to the upstream, e.g. updated_since.")
    param_in: Literal["query", "header", "body"] = "query"
    initial_value: CursorValue | None = Field(
        default=None, description="Cursor sent by full batches; none: the param is left out.")
    lag: float = Field(default=0, ge=0, le=10**12,
                       description="Refetch this much before the cursor: seconds for a time "
                                   "cursor, units for a number.")
    deleted_path: str | None = Field(
        default=None, min_length=1, max_length=256,
        description="Dotted path to the field that marks a deleted record (a tombstone).")
    deleted_value: Any = Field(default=True,
                               description="The value at deleted_path that means deleted.")
    full_refresh_every: FullRefreshEvery | None = None

    @field_validator("initial_value")
    @classmethod
    def _orderable(cls, value: CursorValue | None) -> CursorValue | None:
        if value is None or isinstance(value, int):
            return value
        try:
            number = float(value)
        except ValueError:
            number = None
        if number is not None and number == number and abs(number) != float("inf"):
            return value
        if isinstance(value, str) and number is None:
            try:
                datetime.fromisoformat(value)
                return value
            except ValueError:
                pass
        raise ValueError("initial_value must be a number or an ISO-8601 time, as the cursor")


class Details(_Strict):
    """One more request per record; its answer is merged into the record or put under a field."""

    url: str = Field(min_length=1, max_length=2048,
                     description="URL template filled from the record: https://x/items/{id}.")
    records_path: str = Field(default="", max_length=256,
                              description="Dotted path to the detail in the answer; '' whole.")
    into: str | None = Field(default=None, min_length=1, max_length=256,
                             description="Put the detail under this field; none: merge it.")
    concurrency: int = Field(default=4, ge=1, le=32,
                             description="Detail requests in flight at once.")
    max_failed_ratio: float = Field(
        default=0.0, ge=0, le=1,
        description="Share of detail requests that may fail (their records are left out) "
                    "before the batch fails.")

    @field_validator("url")
    @classmethod
    def _template(cls, url: str) -> str:
        if not url.lower().startswith(("http://", "https://")):
            raise ValueError("url must start with http:// or https://")
        if PLACEHOLDER.sub("", url).count("{") or PLACEHOLDER.sub("", url).count("}"):
            raise ValueError("url has an unbalanced brace; placeholders look like {id}")
        if any(not name.strip() for name in PLACEHOLDER.findall(url)):
            raise ValueError("url has an empty placeholder {}; name a record field: {id}")
        return url

    @property
    def placeholders(self) -> list[str]:
        """Return the dotted paths the template names, in order."""
        return PLACEHOLDER.findall(self.url)


class CsvOptions(_Strict):
    """How a CSV answer is read: a header row, then one record per row."""

    delimiter: str = Field(default=",", min_length=1, max_length=1)


def fingerprint(definition: Any) -> str:
    """Return a digest of what shapes a stream's stored records.

    Two versions built with the same fingerprint can be merged by key; any change of the
    upstream address, body, format, details, key, order, middleware or cursor changes it.
    """
    source = definition.source
    parts = {"key": definition.key, "order_by": definition.order_by,
             "middleware": [spec.model_dump(mode="json") for spec in definition.middleware],
             "source": source.model_dump(mode="json", include={
                 "url", "method", "params", "body", "records_path", "format", "csv",
                 "details"}),
             "incremental": source.incremental.model_dump(mode="json", include={
                 "cursor_path", "param", "param_in", "deleted_path", "deleted_value"})
             if source.incremental else None}
    text = orjson.dumps(parts, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(text).hexdigest()[:16]
