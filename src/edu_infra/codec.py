"""JSON encoding for cached values: orjson for bytes, cattrs for attrs entities and values.

Only JSON: a cache must never be a way to run code, so there is no pickle (or any format
that names classes) anywhere. Whoever decodes says which type it expects; the data cannot.

Entities decode to fresh, detached objects built through `__init__` (validators run), equal
field by field to what was encoded. UUIDs travel as strings, datetimes as ISO 8601 with their
offset, enums as their values, tuples as arrays.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import Enum, IntEnum, StrEnum
from typing import Any
from uuid import UUID

import cattrs
import orjson

__all__ = ["CodecError", "converter", "dumps", "from_json", "loads", "to_json"]


class CodecError(ValueError):
    """A value could not be encoded as JSON, or stored bytes could not be decoded."""


def _structure_uuid(value: Any, _: type) -> UUID:
    if not isinstance(value, str):
        raise TypeError(f"expected a UUID string, got {type(value).__name__}")
    return UUID(value)


def _structure_datetime(value: Any, _: type) -> datetime:
    if not isinstance(value, str):
        raise TypeError(f"expected an ISO 8601 string, got {type(value).__name__}")
    return datetime.fromisoformat(value)


def _structure_date(value: Any, _: type) -> date:
    if not isinstance(value, str):
        raise TypeError(f"expected an ISO 8601 date, got {type(value).__name__}")
    return date.fromisoformat(value)


def _structure_decimal(value: Any, _: type) -> Decimal:
    if not isinstance(value, str | int):
        raise TypeError(f"expected a decimal string, got {type(value).__name__}")
    return Decimal(value)


def _enum_value(member: Enum) -> Any:
    return member.value


def make_converter() -> cattrs.Converter:
    """A converter for edu-core's attrs classes; extra keys in stored data are ignored."""
    conv = cattrs.Converter()
    for kind in (Enum, StrEnum, IntEnum):
        conv.register_unstructure_hook(kind, _enum_value)
    conv.register_unstructure_hook(UUID, str)
    conv.register_structure_hook(UUID, _structure_uuid)
    conv.register_unstructure_hook(datetime, datetime.isoformat)
    conv.register_structure_hook(datetime, _structure_datetime)
    conv.register_unstructure_hook(date, date.isoformat)
    conv.register_structure_hook(date, _structure_date)
    conv.register_unstructure_hook(Decimal, str)
    conv.register_structure_hook(Decimal, _structure_decimal)
    return conv


#: The shared converter. Register hooks for your own types here at start-up.
converter = make_converter()


def to_json(value: Any, type_: Any = None) -> Any:
    """`value` as JSON-compatible data (dicts, lists, str, int, float, bool, None)."""
    try:
        return converter.unstructure(value, unstructure_as=type_)
    except Exception as exc:
        raise CodecError(f"cannot encode {type(value).__name__}: {exc}") from exc


def from_json(data: Any, type_: Any) -> Any:
    """Build a `type_` from JSON-compatible data; `CodecError` when the data does not fit."""
    try:
        return converter.structure(data, type_)
    except Exception as exc:
        raise CodecError(f"stored data does not fit {_name(type_)}: {_summary(exc)}") from exc


def dumps(data: Any) -> bytes:
    """JSON bytes; sets, objects and ints beyond 64 bits are `CodecError` (NaN becomes null)."""
    try:
        return orjson.dumps(data)
    except (orjson.JSONEncodeError, TypeError) as exc:
        raise CodecError(f"not JSON-encodable: {exc}") from exc


def loads(raw: bytes | bytearray | memoryview | str) -> Any:
    """Parse JSON bytes; `CodecError` for anything that is not valid UTF-8 JSON."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise CodecError(f"not valid JSON: {exc}") from exc


def _name(type_: Any) -> str:
    return getattr(type_, "__name__", None) or repr(type_)


def _summary(exc: BaseException) -> str:
    if isinstance(exc, cattrs.BaseValidationError):
        inner = "; ".join(_summary(e) for e in exc.exceptions[:3])
        return f"{exc.message} ({inner})"
    return f"{type(exc).__name__}: {exc}"
