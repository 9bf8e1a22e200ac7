"""The filter tree (`Condition`, `And`, `Or`) and `F`, which builds conditions from field names.

Filters are plain values: they name fields by string and carry raw values; `binding` checks
them against an entity class, the adapters evaluate only what it returns.
"""

from __future__ import annotations

import typing
from collections.abc import Iterable
from enum import StrEnum
from typing import Any, Union

from attrs import frozen


class Op(StrEnum):
    EQ = "eq"
    NE = "ne"
    LT = "lt"
    LE = "le"
    GT = "gt"
    GE = "ge"
    IN = "in"
    IS_NULL = "is_null"
    CONTAINS_ALL = "contains_all"
    STARTSWITH = "startswith"
    ICONTAINS = "icontains"


class _Combinable:
    def __and__(self, other: Filter) -> And:
        return And(_flatten(And, (typing.cast("Filter", self), other)))

    def __or__(self, other: Filter) -> Or:
        return Or(_flatten(Or, (typing.cast("Filter", self), other)))


@frozen
class Condition(_Combinable):
    """`field op value`; see `edu_domain.query` for null semantics."""

    field: str
    op: Op
    value: Any = None


@frozen
class And(_Combinable):
    parts: tuple[Filter, ...]


@frozen
class Or(_Combinable):
    parts: tuple[Filter, ...]


Filter = Union[Condition, And, Or]  # noqa: UP007 - a runtime alias used in isinstance checks


def _flatten(kind: type[And] | type[Or], parts: Iterable[Filter]) -> tuple[Filter, ...]:
    flat: list[Filter] = []
    for part in parts:
        flat.extend(part.parts if isinstance(part, kind) else (part,))
    return tuple(flat)


def all_of(*parts: Filter) -> Filter:
    return parts[0] if len(parts) == 1 else And(_flatten(And, parts))


def any_of(*parts: Filter) -> Filter:
    return parts[0] if len(parts) == 1 else Or(_flatten(Or, parts))


@frozen
class F:
    """A field reference by name: `F("created_at").ge(since)`."""

    name: str

    def eq(self, value: Any) -> Condition:
        return Condition(self.name, Op.EQ, value)

    def ne(self, value: Any) -> Condition:
        return Condition(self.name, Op.NE, value)

    def lt(self, value: Any) -> Condition:
        return Condition(self.name, Op.LT, value)

    def le(self, value: Any) -> Condition:
        return Condition(self.name, Op.LE, value)

    def gt(self, value: Any) -> Condition:
        return Condition(self.name, Op.GT, value)

    def ge(self, value: Any) -> Condition:
        return Condition(self.name, Op.GE, value)

    def in_(self, values: Iterable[Any]) -> Condition:
        return Condition(self.name, Op.IN, values)

    def is_null(self, null: bool = True) -> Condition:
        return Condition(self.name, Op.IS_NULL, null)

    def not_null(self) -> Condition:
        return Condition(self.name, Op.IS_NULL, False)

    def contains_all(self, values: Iterable[str]) -> Condition:
        return Condition(self.name, Op.CONTAINS_ALL, values)

    def startswith(self, prefix: str) -> Condition:
        return Condition(self.name, Op.STARTSWITH, prefix)

    def icontains(self, text: str) -> Condition:
        return Condition(self.name, Op.ICONTAINS, text)
