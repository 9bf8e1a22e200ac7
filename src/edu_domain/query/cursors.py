"""Keyset-page cursors: opaque strings that carry the last row's order values.

A cursor names its entity and ordering, so one made for another query is refused, and its
values are checked as query values are: a forged cursor is a `ValidationError`, never a crash.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from datetime import datetime
from enum import Enum
from typing import Any
from uuid import UUID

from edu_domain.errors import ValidationError
from edu_domain.model.base import Entity
from edu_domain.query.builder import Order
from edu_domain.query.fields import FieldInfo, Kind, describe
from edu_domain.query.values import coerce

MAX_CURSOR = 4_096


def _encode_value(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value if not isinstance(value, Enum) else value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return value.hex
    if isinstance(value, Enum):
        return value.value
    raise TypeError(type(value).__name__)  # pragma: no cover - orderable kinds only


def _decode_value(info: FieldInfo, raw: Any) -> Any:
    if raw is None:
        if not info.nullable:
            raise ValueError("null for a required field")
        return None
    if info.kind is Kind.DATETIME:
        if not isinstance(raw, str):
            raise ValueError("datetime")
        parsed = datetime.fromisoformat(raw)
        if parsed.utcoffset() is None:
            raise ValueError("naive datetime")
        return parsed
    if info.kind in (Kind.BOOL,) and not isinstance(raw, bool):
        raise ValueError("bool")
    if info.kind is Kind.INT and (isinstance(raw, bool) or not isinstance(raw, int)):
        raise ValueError("int")
    if info.kind in (Kind.STR, Kind.UUID, Kind.ENUM) and not isinstance(raw, str):
        raise ValueError("str")
    return coerce(info, raw)


def cursor_key(ordering: Sequence[Order]) -> str:
    return ",".join(("-" if o.descending else "") + o.field for o in ordering)


def encode_cursor(cls: type[Entity], ordering: Sequence[Order], values: Sequence[Any]) -> str:
    """An opaque cursor: the entity, the ordering and the last row's order values."""
    payload = [cls.__name__, cursor_key(ordering), [_encode_value(v) for v in values]]
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cls: type[Entity], ordering: Sequence[Order], cursor: object) -> tuple[Any, ...]:
    if not isinstance(cursor, str) or not cursor or len(cursor) > MAX_CURSOR:
        raise ValidationError("cursor", "not a cursor of this query")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        name, key, values = json.loads(raw)
        if name != cls.__name__ or key != cursor_key(ordering) or len(values) != len(ordering):
            raise ValueError("cursor belongs to another query")
        fields = describe(cls)
        return tuple(
            _decode_value(fields[o.field], v) for o, v in zip(ordering, values, strict=True)
        )
    except (
        ValueError,
        TypeError,
        RecursionError,
        binascii.Error,
        UnicodeDecodeError,
        ValidationError,
    ):
        raise ValidationError("cursor", "not a cursor of this query") from None
