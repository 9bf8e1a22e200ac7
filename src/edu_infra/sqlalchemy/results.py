"""How a column's value comes back from asyncpg, with fast paths for the hot types of a row."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Dialect

from edu_infra.sqlalchemy.types import EnumText, UtcDateTime

Processor = Callable[[Any], Any] | None


def result_processor(type_: Any, dialect: Dialect) -> Processor:
    """The column type's result processing, with fast paths for the hot types of a row.

    asyncpg already returns `timestamptz` as UTC-aware datetimes, and an enum member is a
    dict lookup away: the generic TypeDecorator wrappers cost more than the fetch of a page.
    """
    if isinstance(type_, UtcDateTime):
        slow = type_.dialect_impl(dialect).result_processor(dialect, None)
        assert slow is not None

        def utc(value: Any) -> Any:
            if value is None or (isinstance(value, datetime) and value.tzinfo is UTC):
                return value
            return slow(value)

        return utc
    if isinstance(type_, EnumText):
        members = dict(type_.enum._value2member_map_)
        enum = type_.enum

        def member(value: Any) -> Any:
            if value is None:
                return None
            found = members.get(value)
            return found if found is not None else enum(value)

        return member
    process: Processor = type_.dialect_impl(dialect).result_processor(dialect, None)
    return process


__all__ = ["Processor", "result_processor"]
