"""What each entity field is to a query: its `Kind`, nullability and enum, read from the
attrs fields and their type hints once per class; and which fields no query may name."""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from datetime import datetime
from enum import Enum, StrEnum
from typing import Any, Union
from uuid import UUID

import attrs
from attrs import frozen

from edu_domain.errors import ValidationError
from edu_domain.model.base import Entity


class Kind(StrEnum):
    """What a field holds, as far as querying is concerned."""

    STR = "str"
    INT = "int"
    BOOL = "bool"
    DATETIME = "datetime"
    UUID = "uuid"
    ENUM = "enum"
    TAGS = "tags"
    JSON = "json"


ORDERABLE = frozenset({Kind.STR, Kind.INT, Kind.DATETIME, Kind.UUID, Kind.BOOL, Kind.ENUM})


@frozen
class FieldInfo:
    name: str
    kind: Kind
    nullable: bool
    enum: type[Enum] | None = None


_DESCRIBED: dict[type[Entity], Mapping[str, FieldInfo]] = {}


def describe(cls: type[Entity]) -> Mapping[str, FieldInfo]:
    """The queryable fields of an entity class, from its attrs fields and their types."""
    fields = _DESCRIBED.get(cls)
    if fields is None:
        hints = typing.get_type_hints(cls)
        fields = {a.name: _field_info(a.name, hints[a.name]) for a in attrs.fields(cls)}
        _DESCRIBED[cls] = fields
    return fields


def _field_info(name: str, hint: Any) -> FieldInfo:
    args = typing.get_args(hint)
    nullable = False
    if typing.get_origin(hint) in (Union, types.UnionType) and type(None) in args:
        nullable = True
        (hint,) = (arg for arg in args if arg is not type(None))
    origin = typing.get_origin(hint)
    if origin is tuple:
        return FieldInfo(name, Kind.TAGS, nullable)
    if origin is dict or hint is dict:
        return FieldInfo(name, Kind.JSON, nullable)
    if isinstance(hint, type) and issubclass(hint, Enum):
        return FieldInfo(name, Kind.ENUM, nullable, hint)
    simple = {
        bool: Kind.BOOL,
        int: Kind.INT,
        str: Kind.STR,
        datetime: Kind.DATETIME,
        UUID: Kind.UUID,
    }
    return FieldInfo(name, simple[hint], nullable)


def field_info(cls: type[Entity], name: object, part: str) -> FieldInfo:
    fields = describe(cls)
    if not isinstance(name, str) or name not in fields:
        raise ValidationError(part, f"{cls.__name__} has no field {name!r}")
    if name in _secret_fields(cls):
        raise ValidationError(part, f"{cls.__name__}.{name} is secret and cannot be queried")
    return fields[name]


_SECRETS: dict[type[Entity], frozenset[str]] = {}


def _secret_fields(cls: type[Entity]) -> frozenset[str]:
    """Fields kept out of reprs (password and token hashes): filtering or ordering by them
    would let a caller guess a hash piece by piece (`startswith`), so no query names them."""
    secret = _SECRETS.get(cls)
    if secret is None:
        secret = frozenset(a.name for a in attrs.fields(cls) if a.repr is False)
        _SECRETS[cls] = secret
    return secret
