"""Argument checks of the `UnitOfWork` port, and the little behaviour every adapter shares.

Each adapter calls these at the top of its public methods, before any I/O, so memory,
SQLite and PostgreSQL cannot disagree on a bad argument: each is one `ValidationError`
naming the argument, and nothing changes. Query values themselves are checked by
`edu_domain.query.bind`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar
from uuid import UUID

from edu_domain.errors import ReadOnlyError, ValidationError
from edu_domain.model import ENTITY_TYPES
from edu_domain.model.base import Entity
from edu_domain.query import ORDERABLE, Filter, Query, bind_filter, field_info

E = TypeVar("E", bound=Entity)


def check_entity_class(cls: object) -> type[Entity]:
    """`cls` if it is a persisted entity class, else ValidationError."""
    if not isinstance(cls, type) or cls not in ENTITY_TYPES:
        name = getattr(cls, "__name__", type(cls).__name__)
        raise ValidationError("entity", f"{name} is not a persisted entity class")
    return cls


def check_entity(entity: object) -> Entity:
    """`entity` if it is an instance of a persisted entity class, else ValidationError."""
    check_entity_class(type(entity))
    assert isinstance(entity, Entity)
    return entity


def check_entities(entities: object) -> list[Entity]:
    """`add_all`'s argument as a list of entities (a string or mapping is not a collection)."""
    if isinstance(entities, (str, bytes, Mapping)) or not isinstance(entities, Iterable):
        raise ValidationError("entities", "must be a collection of entities")
    return [check_entity(entity) for entity in entities]


def check_id(value: object) -> UUID:
    """An entity id: a `UUID` instance (a UUID's text is refused on every adapter)."""
    if not isinstance(value, UUID):
        raise ValidationError("id", "must be a UUID")
    return value


def check_tenant(value: object) -> UUID:
    if not isinstance(value, UUID):
        raise ValidationError("tenant", "must be an organization id (UUID)")
    return value


def check_actor(value: object) -> UUID | None:
    if value is not None and not isinstance(value, UUID):
        raise ValidationError("actor", "must be a user id (UUID) or None")
    return value


def check_flag(name: str, value: object) -> bool:
    """A keyword flag (`include_deleted`, `lock`, `hard`): a real bool, not a truthy value."""
    if not isinstance(value, bool):
        raise ValidationError(name, "must be True or False")
    return value


def check_lock(lock: object, *, read_only: bool) -> bool:
    """`get(lock=True)` takes a row lock for a write to come: refused in a read-only unit of
    work on every adapter, before any SQL (a hot standby would refuse it only there)."""
    if check_flag("lock", lock) and read_only:
        raise ReadOnlyError()
    return bool(lock)


def check_callback(callback: object) -> None:
    if not callable(callback):
        raise ValidationError("callback", "must be an async callable")


def check_query(query: object) -> Query | None:
    """`None` or a `Query` (its fields, values and page are checked by `bind`)."""
    if query is not None and not isinstance(query, Query):
        raise ValidationError("query", "must be a Query")
    return query


def check_batch_size(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError("batch_size", "must be a positive integer")
    return value


def check_group_fields(cls: type[Entity], by: object) -> tuple[str, ...]:
    """Validated `count_by` field names: one or more, orderable kinds only."""
    if isinstance(by, str) or not isinstance(by, Sequence) or not by:
        raise ValidationError("by", "name one or more fields to group by")
    names: list[str] = []
    for name in by:
        info = field_info(cls, name, "by")
        if info.kind not in ORDERABLE:
            raise ValidationError("by", f"cannot group by {info.kind} field {info.name!r}")
        names.append(info.name)
    return tuple(names)


def check_measures(cls: type[Entity], measures: object) -> dict[str, Filter]:
    """Bound measure filters by name (names checked before the filters)."""
    if measures is None:
        return {}
    if not isinstance(measures, Mapping):
        raise ValidationError("measures", "must map names to filters")
    items: list[tuple[Any, Any]] = list(measures.items())
    for name, _ in items:
        if not isinstance(name, str) or not name:
            raise ValidationError("measures", "measure names must be non-empty strings")
    return {name: bind_filter(cls, flt) for name, flt in items}


def check_read(cls: object, query: object, include_deleted: object) -> type[Entity]:
    """The common arguments of find and count."""
    checked = check_entity_class(cls)
    check_query(query)
    check_flag("include_deleted", include_deleted)
    return checked


@contextlib.contextmanager
def undone_on_failure(entity: Entity) -> Iterator[None]:
    """A failed delete or restore leaves the caller's entity as deleted or live as it was:
    the adapter's own half-done change is not the caller's (every adapter uses this)."""
    values = entity.__dict__
    before = (values.get("deleted_at"), values.get("deleted_by"))
    try:
        yield
    except BaseException:
        values["deleted_at"], values["deleted_by"] = before
        raise


__all__ = [
    "check_actor",
    "check_batch_size",
    "check_callback",
    "check_entities",
    "check_entity",
    "check_entity_class",
    "check_flag",
    "check_group_fields",
    "check_id",
    "check_measures",
    "check_query",
    "check_read",
    "check_tenant",
    "undone_on_failure",
]
