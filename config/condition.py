"""The condition language of the `filter` middleware: JSON data, never evaluated code.

A condition is one of:

    {"field": "status", "op": "eq", "value": "active"}     a comparison on a dotted path
    {"field": "tags", "op": "exists"}                      the field is present
    {"and": [condition, ...]}   {"or": [condition, ...]}   {"not": condition}

Operators: eq, ne, lt, le, gt, ge, in, not_in, exists. `in`/`not_in` take a list.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

Operator = Literal["eq", "ne", "lt", "le", "gt", "ge", "in", "not_in", "exists"]


class Condition(BaseModel):
    """A comparison, or `and` / `or` / `not` of conditions (exactly one form)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True,
                              serialize_by_alias=True)

    field: str | None = Field(default=None, min_length=1, max_length=256)
    op: Operator | None = None
    value: Any = None
    all_of: list[Condition] | None = Field(default=None, alias="and", min_length=1,
                                           max_length=100)
    any_of: list[Condition] | None = Field(default=None, alias="or", min_length=1,
                                           max_length=100)
    negated: Condition | None = Field(default=None, alias="not")

    @model_validator(mode="after")
    def _one_form(self) -> Condition:
        forms = [self.field is not None, self.all_of is not None, self.any_of is not None,
                 self.negated is not None]
        if sum(forms) != 1:
            raise ValueError("a condition has exactly one of: field (with op), and, or, not")
        if self.field is not None and self.op is None:
            raise ValueError("a comparison needs an op: eq, ne, lt, le, gt, ge, in, "
                             "not_in, exists")
        if self.field is None and (self.op is not None or self.value is not None):
            raise ValueError("op and value belong to a comparison with a field")
        if self.op in ("in", "not_in") and not isinstance(self.value, list):
            raise ValueError(f"op {self.op!r} needs a list value")
        return self

    @model_serializer(mode="wrap")
    def _compact(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return {key: value for key, value in handler(self).items() if value is not None}
