"""What every entity carries: identity, audit stamps, soft delete, version, domain events.

Entities are `attrs.define(slots=False, eq=False)`: identity equality (the identity map's
notion of sameness) and a `__dict__` for SQLAlchemy's instrumentation. The ORM does not call
`__init__` on load, so nothing here relies on it: pending events live in `__dict__` and are
created on first use.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, ClassVar, Literal, TypeVar
from uuid import UUID

import attrs
from attrs import define, field, frozen

from edu_domain.errors import ValidationError
from edu_domain.model.ids import uuid7

_EVENTS = "_edu_pending_events"
#: Set by a unit of work that holds the entity only weakly (after a bulk insert): called
#: when an event is recorded, so that the unit of work keeps the entity until its commit.
KEEPER = "_edu_keeper"


def rule(
    check: Callable[..., Any], **options: Any
) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    """Turn a `check(field, value)` from `rules` into an attrs validator."""

    def validate(_instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        check(attribute.name, value, **options)

    return validate


def nullable(
    check: Callable[..., Any], **options: Any
) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    """Like `rule`, but None passes."""

    def validate(_instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is not None:
            check(attribute.name, value, **options)

    return validate


def enum_of(kind: type[Any]) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    def validate(_instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if not isinstance(value, kind):
            allowed = ", ".join(member.value for member in kind)
            raise ValidationError(attribute.name, f"must be one of: {allowed}")

    return validate


def to_enum(kind: type[Any]) -> Callable[[Any], Any]:
    """Accept an enum member or its value; anything else is left for the validator.
    One converter per enum (cached); a member's value is found in a dict, as `kind(value)`
    itself looks it up first, without the enum machinery's call."""
    found = _TO_ENUM.get(kind)
    if found is not None:
        return found
    by_value = {member.value: member for member in kind}

    def convert(value: Any) -> Any:
        if isinstance(value, kind):
            return value
        try:
            member = by_value.get(value)
        except TypeError:  # unhashable: the enum's own search decides
            member = None
        if member is not None:
            return member
        try:
            return kind(value)
        except (ValueError, TypeError):
            return value

    _TO_ENUM[kind] = convert
    return convert


_TO_ENUM: dict[type[Any], Callable[[Any], Any]] = {}


def check_bool(field: str, value: object) -> None:
    if not isinstance(value, bool):
        raise ValidationError(field, "must be true or false")


#: Integer fields are 32-bit columns (see `edu_domain.query.INT_MAX`).
INT32_MAX = 2**31 - 1


def check_int(field: str, value: object, min_value: int = 0) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < min_value:
        raise ValidationError(field, f"must be an integer >= {min_value}")
    if value > INT32_MAX:
        raise ValidationError(field, f"must be at most {INT32_MAX}")


def check_uuid(field: str, value: object) -> None:
    if not isinstance(value, UUID):
        raise ValidationError(field, "must be a UUID")


@frozen(kw_only=True)
class UniqueKey:
    """A uniqueness rule among live (not soft-deleted) rows of one organization."""

    fields: tuple[str, ...]
    reported_as: str


@frozen(kw_only=True)
class Reference:
    """A reference to another entity of the same organization (a composite foreign key)."""

    field: str
    target: type[Entity]
    on_delete: Literal["cascade", "restrict"]


@frozen
class DomainEvent:
    """Something that happened; dispatched only after the unit of work commits."""


@define(slots=False, eq=False, kw_only=True)
class Entity:
    """Identity, audit stamps (set by the unit of work), soft delete and version."""

    __unique__: ClassVar[tuple[UniqueKey, ...]] = ()
    __references__: ClassVar[tuple[Reference, ...]] = ()
    __tenant_field__: ClassVar[str] = "organization_id"

    id: UUID = field(factory=uuid7, validator=rule(check_uuid))
    created_at: datetime | None = None
    created_by: UUID | None = None
    updated_at: datetime | None = None
    updated_by: UUID | None = None
    deleted_at: datetime | None = None
    deleted_by: UUID | None = None
    version: int = 0

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None

    def record(self, event: DomainEvent) -> None:
        """Queue an event; the unit of work publishes it after a successful commit."""
        self.__dict__.setdefault(_EVENTS, []).append(event)
        keep = self.__dict__.get(KEEPER)
        if keep is not None:
            keep(self)

    def pull_events(self) -> list[DomainEvent]:
        """Take the queued events (the unit of work calls this at commit)."""
        events: list[DomainEvent] = self.__dict__.pop(_EVENTS, [])
        return events

    def has_events(self) -> bool:
        return bool(self.__dict__.get(_EVENTS))


@define(slots=False, eq=False, kw_only=True)
class TenantEntity(Entity):
    """An entity owned by one organization; no read or write may cross organizations."""

    organization_id: UUID = field(validator=rule(check_uuid))


E = TypeVar("E", bound=Entity)


def identical(a: object, b: object) -> bool:
    """Equal and of the same kind at every level: unlike `==`, 1, 1.0 and True differ.

    Change detection uses it, so `metadata={"c": True}` over a stored `{"c": 1}` is a change
    (JSON keeps the difference; Python's `==` would hide it).
    """
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(identical(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(identical(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, (bool, int, float)) or isinstance(b, (bool, int, float)):
        return type(a) is type(b) and a == b
    return a == b


def validate_contents(entity: Entity) -> None:
    """Re-run the validators of fields that hold mutable containers (adapters, at a write).

    attrs validates every field when an entity is built and on every assignment; what can
    change without either is the content of a dict or list, so that is what a write checks
    again (a full `attrs.validate` would double the cost of a bulk insert).
    """
    values = entity.__dict__
    for attribute in _validated_fields(type(entity)):
        value = values.get(attribute.name)
        if isinstance(value, (dict, list, set, bytearray)):
            attribute.validator(entity, attribute, value)  # type: ignore[misc]


_VALIDATED: dict[type[Entity], tuple[attrs.Attribute[Any], ...]] = {}


def _validated_fields(cls: type[Entity]) -> tuple[attrs.Attribute[Any], ...]:
    found = _VALIDATED.get(cls)
    if found is None:
        found = _VALIDATED[cls] = tuple(a for a in attrs.fields(cls) if a.validator is not None)
    return found
