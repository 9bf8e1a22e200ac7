"""Query values: each checked and coerced to its field's kind (`coerce`), text checked on its
own (`checked_text`), and the case folding `icontains` compares on every adapter (`fold`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from edu_domain.errors import ValidationError
from edu_domain.query.fields import FieldInfo, Kind

MAX_TEXT_VALUE = 1_000
#: Integer fields are 32-bit columns (version, counters); wider query values are refused
#: here rather than by the database.
INT_MIN, INT_MAX = -(2**31), 2**31 - 1

_CONTEXT_CASED = frozenset("\u03a3\u0130")  # Σ (final-sigma rule), İ (lowers to two)


def fold(text: str) -> str:
    """`icontains`' case folding: every character lowered on its own, to one character.

    Python's `str.lower` lowers Σ by context (ς at a word's end) and İ to two characters;
    PostgreSQL's `lower()` (libc UTF-8 locale) lowers each character alone, to one. Every
    adapter uses this, so `icontains` matches the same rows everywhere.
    """
    if _CONTEXT_CASED.isdisjoint(text):
        return text.lower()
    return "".join(c.lower()[0] for c in text)


def checked_text(name: str, value: Any) -> str:
    """`value` if it is a string any adapter can store and compare, else ValidationError."""
    if not isinstance(value, str):
        raise ValidationError(name, "expects a string")
    if len(value) > MAX_TEXT_VALUE:
        raise ValidationError(name, f"query text too long (max {MAX_TEXT_VALUE})")
    if "\x00" in value:
        raise ValidationError(name, "must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(name, "must be valid Unicode") from None
    return value


def coerce(info: FieldInfo, value: Any) -> Any:
    """A query value of the field's type, or ValidationError."""
    if value is None:
        raise ValidationError(info.name, "use is_null to match a missing value")
    kind = info.kind
    if kind is Kind.STR:
        return checked_text(info.name, value)
    if kind is Kind.BOOL:
        if not isinstance(value, bool):
            raise ValidationError(info.name, "expects true or false")
        return value
    if kind is Kind.INT:
        if isinstance(value, bool) or not isinstance(value, int) or not INT_MIN <= value <= INT_MAX:
            raise ValidationError(info.name, "expects a 32-bit integer")
        return value
    if kind is Kind.DATETIME:
        if not isinstance(value, datetime) or value.utcoffset() is None:
            raise ValidationError(info.name, "expects a timezone-aware datetime")
        try:
            value.astimezone(UTC)
        except OverflowError:
            # every adapter compares in UTC: a value with no UTC form is refused, not guessed
            raise ValidationError(
                "query", f"{info.name}: the datetime is out of range once converted to UTC"
            ) from None
        return value
    if kind is Kind.UUID:
        if isinstance(value, UUID):
            return value
        if isinstance(value, str):
            try:
                return UUID(value)
            except ValueError:
                pass
        raise ValidationError(info.name, "expects a UUID")
    if kind is Kind.ENUM:
        assert info.enum is not None
        try:
            return info.enum(value)
        except (ValueError, TypeError):
            allowed = ", ".join(str(m.value) for m in info.enum)
            raise ValidationError(info.name, f"expects one of: {allowed}") from None
    raise ValidationError(info.name, f"a {kind} field cannot be compared")
