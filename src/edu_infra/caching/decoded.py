"""Cached values decoded once per distinct content; every reader gets a copy of its own.

A hit on a popular key returns the same bytes again and again. Decoding them through cattrs
builds a validated entity each time (converters, validators, one instrumented set per
field): most of a hit's CPU. `DecodedValues` decodes (and so validates) each distinct
content once per process, keeps that value as a template it never hands out, and gives each
caller a fresh copy: immutable field values are shared, mutable ones (dicts, lists) are deep
copies (assigned through SQLAlchemy's instrumentation when the class is mapped, so its
mutable-JSON tracking sees them). The key is the exact JSON text, so anything that differs in a
single byte (another instance's write, a corrupted or hostile value) is decoded and
validated in full before it is ever served. Decoding is a pure function of the text and
the type: the converter's hooks are registered at start-up, and validators read nothing
but the value.
"""

from __future__ import annotations

import copy
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

import attrs

from edu_infra.codec import CodecError, dumps, from_json

__all__ = ["DecodedValues"]

_IMMUTABLE = frozenset(
    {str, int, float, bool, type(None), bytes, UUID, datetime, date, time, timedelta, Decimal}
)


def _immutable(value: Any) -> bool:
    kind = type(value)
    if kind in _IMMUTABLE or isinstance(value, Enum):
        return True
    return kind is tuple and all(_immutable(v) for v in value)


class DecodedValues:
    """`from_json(data, type_)` for entity classes, decoded once per distinct JSON text.

    Only attrs classes with a `__dict__` (entities: `slots=False`) and no
    `__attrs_post_init__` (state it derives would be missing from a copy) are memoized;
    anything else is decoded each time. Memory is bounded by the text kept, not the count:
    a text longer than `max_text` is never kept (a small text can decode to many objects:
    64 kB of `{}` is 4 MB of dicts), and the oldest templates go once the texts kept pass
    `max_total` bytes or `max_items` entries.
    """

    def __init__(
        self, max_items: int = 1024, *, max_text: int = 4096, max_total: int = 512 * 1024
    ) -> None:
        if max_items < 1 or max_text < 1 or max_total < max_text:
            raise ValueError("max_items and max_text must be at least 1, max_total >= max_text")
        self.max_items, self.max_text, self.max_total = max_items, max_text, max_total
        self._templates: dict[tuple[Any, bytes], Any] = {}
        self._fields: dict[type, tuple[str, ...] | None] = {}
        self._total = 0

    def __len__(self) -> int:
        return len(self._templates)

    def decode(self, data: Any, type_: Any) -> Any:
        """A fresh `type_` built from `data`; `CodecError` when it does not fit (nothing kept)."""
        names = self._field_names(type_)
        if names is None:
            return from_json(data, type_)
        try:
            key = (type_, dumps(data))
        except CodecError:
            return from_json(data, type_)
        template = self._templates.get(key)
        if template is None:
            template = from_json(data, type_)
            if len(key[1]) > self.max_text:
                return template  # decoded for this reader alone, never kept
            while self._templates and (
                len(self._templates) >= self.max_items or self._total + len(key[1]) > self.max_total
            ):
                oldest = next(iter(self._templates))
                del self._templates[oldest]
                self._total -= len(oldest[1])
            self._templates[key] = template
            self._total += len(key[1])
        return _copy(type_, names, template)

    def _field_names(self, type_: Any) -> tuple[str, ...] | None:
        try:
            return self._fields[type_]
        except (KeyError, TypeError):
            pass
        names: tuple[str, ...] | None = None
        if (
            isinstance(type_, type)
            and attrs.has(type_)
            and "__slots__" not in type_.__dict__
            and not hasattr(type_, "__attrs_post_init__")
        ):
            names = tuple(a.name for a in attrs.fields(type_))
        try:
            self._fields[type_] = names
        except TypeError:  # an unhashable type expression: decoded each time
            return None
        return names


def _copy(cls: type, names: tuple[str, ...], template: Any) -> Any:
    """A new `cls` holding `template`'s field values, built without `__init__`.

    A class mapped by SQLAlchemy gets its instance state from its class manager (as the ORM
    makes a new object; the copy is transient, as one built by `__init__` is); the manager is
    looked up at each copy, since tests map and unmap classes within one process.
    """
    manager = cls.__dict__.get("_sa_class_manager")
    obj = manager.new_instance() if manager is not None else object.__new__(cls)
    source, target = template.__dict__, obj.__dict__
    for name in names:
        value = source[name]
        if _immutable(value):
            target[name] = value
        elif manager is not None:  # through the instrumentation (mutable-JSON tracking)
            setattr(obj, name, copy.deepcopy(value))
        else:  # a frozen class refuses setattr; the template's value is validated already
            target[name] = copy.deepcopy(value)
    return obj
