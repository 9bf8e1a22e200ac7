"""Column types that give the domain's values the same meaning on PostgreSQL and SQLite.

- `UtcDateTime`: timezone-aware UTC in and out. PostgreSQL stores `timestamptz`; SQLite
  stores fixed-width UTC text, so text comparison and ordering equal time order.
- `EnumText`: an enum stored as its text value (CHECK constraints live on the table) and
  read back as the member.
- `Tags`: the domain's `tuple[str, ...]`; `text[]` on PostgreSQL (GIN-indexable, `@>`),
  JSON on SQLite.
- `ordered_text`: strings compare by code point on both dialects (`COLLATE "C"` on the
  PostgreSQL column, so indexes serve ordering, ranges and prefixes; SQLite's BINARY is
  already code-point order).
- `json_object`: JSONB on PostgreSQL, JSON on SQLite, wrapped in `MutableDict` so that
  in-place changes of a dict are flushed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from sqlalchemy import JSON, DateTime, String, Text
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.mutable import MutableDict
from sqlalchemy.types import TypeDecorator, TypeEngine

from edu_domain.model.base import identical

_SQLITE_TIME_WIDTH = 26  # YYYY-MM-DDTHH:MM:SS.ffffff, always UTC


def ordered_text(length: int | None = None) -> TypeEngine[str]:
    """A string type that compares and sorts by code point on both dialects."""
    base: TypeEngine[str] = String(length) if length is not None else Text()
    pg: TypeEngine[str] = (
        String(length, collation="C") if length is not None else Text(collation="C")
    )
    return base.with_variant(pg, "postgresql")


class TrackedDict(MutableDict[str, Any]):
    """A dict that tells its entity about in-place changes.

    Unlike `MutableDict`, it leaves a non-dict alone instead of raising SQLAlchemy's
    ValueError: attrs assigns in `__init__` before it validates, and the entity's own
    validator must be the one to reject the value (with a domain ValidationError).
    """

    @classmethod
    def coerce(cls, key: str, value: Any) -> TrackedDict | None:
        if isinstance(value, cls):
            return value
        if isinstance(value, dict):
            return cls(value)
        return None


class _StrictJSON(JSON):
    """JSON whose change detection tells 1, 1.0 and True apart (see `identical`)."""

    def compare_values(self, x: Any, y: Any) -> bool:
        return identical(x, y)


class _StrictJSONB(postgresql.JSONB):
    def compare_values(self, x: Any, y: Any) -> bool:
        return identical(x, y)


def json_object() -> TypeEngine[Any]:
    """A JSON object column whose in-place changes are tracked."""
    return TrackedDict.as_mutable(_StrictJSON().with_variant(_StrictJSONB(), "postgresql"))


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on both dialects; naive values are refused, never guessed."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(_SQLITE_TIME_WIDTH))
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, datetime) or value.utcoffset() is None:
            raise TypeError("UtcDateTime needs a timezone-aware datetime")
        utc = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return utc.replace(tzinfo=None).isoformat(timespec="microseconds")
        return utc

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            return datetime.fromisoformat(value).replace(tzinfo=UTC)
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    @staticmethod
    def to_sqlite(value: datetime) -> str:
        """The stored SQLite text of an aware datetime (for raw SQL and tests)."""
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds")


class EnumText(TypeDecorator[Enum]):
    """An enum stored as text; reads return the member, writes accept member or value."""

    impl = String(32)
    cache_ok = True

    def __init__(self, enum: type[Enum], length: int = 32) -> None:
        super().__init__(length)
        self.enum = enum

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        length = getattr(self.impl, "length", None)
        if dialect.name == "postgresql":
            return dialect.type_descriptor(String(length, collation="C"))
        return dialect.type_descriptor(String(length))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        return self.enum(value).value

    def process_result_value(self, value: Any, dialect: Dialect) -> Enum | None:
        return None if value is None else self.enum(value)

    @property
    def values(self) -> tuple[str, ...]:
        return tuple(str(member.value) for member in self.enum)


class Tags(TypeDecorator[tuple[str, ...]]):
    """A tuple of strings: `text[]` on PostgreSQL, a JSON array on SQLite."""

    impl = JSON()
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.ARRAY(Text()))
        return dialect.type_descriptor(JSON())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return None if value is None else list(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> tuple[str, ...] | None:
        if value is None:
            return None
        if isinstance(value, str):  # SQLite JSON read through a raw text column
            value = json.loads(value)
        return tuple(value)

    def coerce_compared_value(self, op: Any, value: Any) -> TypeEngine[Any]:
        return self

    @staticmethod
    def to_postgres(value: Sequence[str]) -> list[str]:
        return list(value)


__all__ = ["EnumText", "Tags", "TrackedDict", "UtcDateTime", "json_object", "ordered_text"]
