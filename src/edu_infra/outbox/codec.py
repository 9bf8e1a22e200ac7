"""Domain events <-> the JSON objects outbox rows keep (the same on every adapter).

An event is stored as its class name (`kind`) and an object of its fields: UUIDs and
datetimes as text, enums as their value, tuples as lists. Decoding is driven by the
fields' types, finds the class among the subclasses of `DomainEvent` (so a host's own
events work once their module is imported) and refuses anything that does not fit.
"""

from __future__ import annotations

import enum
import sys
import types
import typing
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

import attrs

from edu_domain.errors import ValidationError
from edu_domain.model.base import DomainEvent
from edu_infra.outbox.seal import Sealer


class UndeliverableEvent(Exception):
    """A stored event that cannot become a `DomainEvent` again.

    `final`: it never will (malformed, or naming another organization than its row), so it
    is dead-lettered at once; otherwise (an unknown kind: a relay older than the writer)
    it is retried like any failed delivery.
    """

    def __init__(self, reason: str, *, final: bool) -> None:
        super().__init__(reason)
        self.final = final


def _subclasses(cls: type[DomainEvent]) -> list[type[DomainEvent]]:
    found = []
    for sub in cls.__subclasses__():
        found.append(sub)
        found.extend(_subclasses(sub))
    return found


def _canonical(cls: type[DomainEvent]) -> type[DomainEvent] | None:
    """The class its module names (attrs replaces a slotted class, and the replaced one
    can linger among the subclasses until it is collected)."""
    module = sys.modules.get(cls.__module__)
    found = getattr(module, cls.__qualname__, None) if module is not None else None
    return found if isinstance(found, type) and issubclass(found, DomainEvent) else None


def event_class(kind: str) -> type[DomainEvent] | None:
    """The event class named `kind`; None when none is (or more than one is) loaded."""
    matches = {_canonical(cls) for cls in _subclasses(DomainEvent) if cls.__name__ == kind}
    matches.discard(None)
    return matches.pop() if len(matches) == 1 else None


def _plain(value: Any, where: str) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, enum.Enum):
        return _plain(value.value, where)
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValidationError("event", f"{where} is a naive datetime")
        return value.isoformat()
    if isinstance(value, (tuple, list)):
        return [_plain(item, where) for item in value]
    raise ValidationError("event", f"{where} ({type(value).__name__}) cannot be stored")


def _secret(field: attrs.Attribute[Any]) -> bool:
    """A field kept out of the event's repr holds a secret (a raw mail token)."""
    return field.repr is False


def encode_event(
    event: DomainEvent, *, sealer: Sealer | None = None, place: str = ""
) -> tuple[str, dict[str, Any]]:
    """(kind, fields) for the outbox; a ValidationError when the event cannot be stored.

    With a `sealer`, secret fields are sealed for `place` (the row: key and organization).
    """
    cls = type(event)
    if not attrs.has(cls):
        raise ValidationError("event", f"{cls.__name__} is not an attrs class")
    if event_class(cls.__name__) is not cls:
        raise ValidationError("event", f"{cls.__name__}: no single event class has this name")
    fields = {}
    for a in attrs.fields(cls):
        where = f"{cls.__name__}.{a.name}"
        value = _plain(getattr(event, a.name), where)
        if _secret(a) and sealer is not None:
            if not isinstance(value, str):
                raise ValidationError("event", f"{where} is secret: it must be a string")
            value = sealer.seal(value, f"{place}:{where}")
        fields[a.name] = value
    return cls.__name__, fields


def _typed(value: Any, kind: Any, where: str) -> Any:
    """`value` (from JSON) as type `kind`, or UndeliverableEvent."""
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in typing.get_args(kind):
            return None
        options = [a for a in typing.get_args(kind) if a is not type(None)]
        if len(options) == 1:
            return _typed(value, options[0], where)
    elif origin is tuple:
        item = typing.get_args(kind)[0]
        if isinstance(value, list):
            return tuple(_typed(v, item, where) for v in value)
    elif kind is UUID and isinstance(value, str):
        try:
            return UUID(value)
        except ValueError:
            pass
    elif kind is datetime and isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return parsed
    elif isinstance(kind, type) and issubclass(kind, enum.Enum):
        try:
            return kind(value)
        except ValueError:
            pass
    elif (kind is bool and isinstance(value, bool)) or (
        kind is int and isinstance(value, int) and not isinstance(value, bool)
    ):
        return value
    elif kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    elif kind is str and isinstance(value, str):
        return value
    raise UndeliverableEvent(f"{where} is not a valid value", final=True)


def decode_event(
    kind: str,
    fields: Mapping[str, Any],
    organization_id: UUID,
    *,
    sealer: Sealer | None = None,
    place: str = "",
) -> DomainEvent:
    """The event a row stored, checked to belong to the row's organization; with a
    `sealer`, its secret fields must be sealed for `place`."""
    cls = event_class(kind) if isinstance(kind, str) else None
    if cls is None:
        raise UndeliverableEvent(f"unknown event kind {str(kind)[:64]!r}", final=False)
    if not isinstance(fields, Mapping):
        raise UndeliverableEvent(f"{kind}: the payload is not an object", final=True)
    hints = typing.get_type_hints(cls)
    declared = {a.name for a in attrs.fields(cls)}
    if set(fields) != declared:
        raise UndeliverableEvent(
            f"{kind}: the payload's fields differ from the event's", final=True
        )
    values = {name: _typed(fields[name], hints[name], f"{kind}.{name}") for name in declared}
    if "organization_id" in values and values["organization_id"] != organization_id:
        raise UndeliverableEvent(f"{kind} names another organization than its row", final=True)
    for a in attrs.fields(cls):
        if _secret(a) and sealer is not None:
            try:
                values[a.name] = sealer.open(values[a.name], f"{place}:{kind}.{a.name}")
            except ValueError:
                raise UndeliverableEvent(
                    f"{kind}.{a.name} is not sealed for this row with this key", final=True
                ) from None
    try:
        return cls(**values)
    except (TypeError, ValueError, ValidationError):
        raise UndeliverableEvent(f"{kind}: the payload is not a valid event", final=True) from None


__all__ = ["UndeliverableEvent", "decode_event", "encode_event", "event_class"]
