"""Plain rows for `UnitOfWork.import_rows`, checked by the entity's own rules.

A bulk import must not build (and, on SQL adapters, instrument) one entity per row, yet a
row must be exactly as valid as the entity built from it. So the rules are not restated
here: each row runs through the converters, defaults and validators that the entity's attrs
fields declare (`edu_domain.model`), the same functions the constructor calls, and comes
out as the full row of field values an adapter stores. Audit fields (created/updated/deleted
at and by, version) are the unit of work's to stamp, as for `add`.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterable, Iterator, Mapping
from enum import Enum
from typing import Any
from uuid import UUID

import attrs

from edu_domain.errors import TenantViolation, ValidationError
from edu_domain.model.base import Entity

#: Set by the unit of work, never by a row.
AUDIT_FIELDS = frozenset(
    {"created_at", "created_by", "updated_at", "updated_by", "deleted_at", "deleted_by", "version"}
)
_FACTORY: type[Any] = attrs.Factory  # type: ignore[assignment]  # a class at run time
_IMMUTABLE = (bool, int, float, str, bytes)
_UNSET: Any = object()
#: Rows an adapter checks and writes at a time: memory stays flat however many rows stream in.
CHUNK = 5_000


def check_rows(rows: object) -> Iterable[Any]:
    """`import_rows`'s argument: an iterable of rows (a string or mapping is not one)."""
    if isinstance(rows, (str, bytes, Mapping)) or not isinstance(rows, Iterable):
        raise ValidationError("rows", "must be an iterable of rows (field name -> value)")
    return rows


def chunks(rows: Iterable[Any], size: int = CHUNK) -> Iterator[list[Any]]:
    """The rows `size` at a time, read lazily (a generator of 100k rows is never a list)."""
    iterator = iter(rows)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def _copied(value: Any) -> Any:
    """Mutable values are copied: the stored row never shares them with the caller."""
    return copy.deepcopy(value) if isinstance(value, (dict, list, set)) else value


class RowRules:
    """How rows of one entity class are checked (`rules_for` keeps one per class)."""

    def __init__(self, cls: type[Entity]) -> None:
        self.cls = cls
        self.fields = attrs.fields(cls)
        self.importable = frozenset(a.name for a in self.fields if a.name not in AUDIT_FIELDS)
        self.tenant_field = cls.__tenant_field__
        #: per field: (name, attribute, converter, factory, preset): `preset` is the value a
        #: row without the field gets when that is always the same (an immutable default,
        #: converted and validated once here), else `_UNSET`
        self._steps = tuple(
            (
                a.name,
                a,
                a.converter,
                a.default.factory if isinstance(a.default, _FACTORY) else None,
                self._preset(a),
            )
            for a in self.fields
        )

    def _preset(self, attribute: attrs.Attribute[Any]) -> Any:
        """The default of `attribute` after its converter and validator, if that is the same
        for every row: an immutable default, a pure converter and a validator that passes it
        (validators check a value, never the instance: `check` passes none)."""
        default = attribute.default
        if attribute.name == self.tenant_field or not (
            default is None or type(default) in _IMMUTABLE or isinstance(default, Enum)
        ):
            return _UNSET
        convert: Any = attribute.converter
        value = convert(default) if convert is not None else default
        if attribute.validator is not None:
            try:
                attribute.validator(None, attribute, value)
            except ValidationError:
                return _UNSET  # refused: each row says so, as the constructor would
        return value

    def check(self, row: object, tenant: UUID | None) -> dict[str, Any]:
        """The stored values of `row`: converted, validated, defaults filled as the
        constructor fills them, the organization the unit of work's `tenant` (a row naming
        another is a TenantViolation). Audit fields hold their defaults, to be stamped."""
        if not isinstance(row, Mapping):
            raise ValidationError("rows", "each row must map field names to values")
        for name in row:
            if name not in self.importable:
                raise self._unknown(name)
        values: dict[str, Any] = {}
        validate: list[attrs.Attribute[Any]] = []
        for name, attribute, converter, factory, preset in self._steps:
            if name in row:
                value = _copied(row[name])
            elif preset is not _UNSET:
                values[name] = preset
                continue
            elif name == self.tenant_field and tenant is not None and name != "id":
                value = tenant
            elif factory is not None:
                value = factory()
            elif attribute.default is attrs.NOTHING:
                raise ValidationError(name, "is required")
            else:
                value = attribute.default
            if converter is not None:
                value = converter(value)
            values[name] = value
            if attribute.validator is not None:
                validate.append(attribute)
        for attribute in validate:  # as attrs does: validators after every conversion
            attribute.validator(None, attribute, values[attribute.name])  # type: ignore[misc]
        if tenant is not None and values[self.tenant_field] != tenant:
            raise TenantViolation(
                f"a {self.cls.__name__} row names another organization than this unit of work's"
            )
        return values

    def _unknown(self, name: object) -> ValidationError:
        if name in AUDIT_FIELDS:
            return ValidationError(str(name), "is set by the unit of work, not by a row")
        shown = name if isinstance(name, str) else repr(name)
        return ValidationError(shown, f"is not a field of {self.cls.__name__}")


_RULES: dict[type[Entity], RowRules] = {}


def rules_for(cls: type[Entity]) -> RowRules:
    """The (cached) row rules of an entity class."""
    found = _RULES.get(cls)
    if found is None:
        found = _RULES[cls] = RowRules(cls)
    return found


__all__ = ["AUDIT_FIELDS", "CHUNK", "RowRules", "check_rows", "chunks", "rules_for"]
