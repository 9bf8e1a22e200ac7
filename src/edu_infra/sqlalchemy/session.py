"""The Session class every SQL unit of work uses, and the ORM events that give it its rules.

The listeners are attached once to `UowSession` (not per session) and find their unit of
work in `session.info`:
- `do_orm_execute`: tenant and soft-delete filters on every ORM read (`with_loader_criteria`,
  built once per mapper; the tenant id is the bound parameter `edu_tenant`, added to every
  execution's parameters, never part of the cached SQL). Column loads (refresh,
  expired attributes) are left alone: nothing in a unit of work expires attributes.
- (PostgreSQL transactions are opened, with their proven tenant, by the unit of work's
  connection, `connection.py`, which `get_bind` hands the session.)
- `before_flush`: audit stamps (updated_at/by) on entities with real changes, and the
  tenant check for a changed organization_id.
- `after_flush`: the Change records handed to commit listeners.
- `after_rollback`: fires before SQLAlchemy expires the instances of a failed transaction
  (a failed flush rolls back on its own): the values are kept so that entities the
  caller holds keep them once the unit of work has been reset.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar, cast
from uuid import UUID

from sqlalchemy import ColumnElement, and_, event, inspect
from sqlalchemy.engine import Connection
from sqlalchemy.orm import (
    Mapper,
    ORMExecuteState,
    Session,
    UOWTransaction,
    with_loader_criteria,
)
from sqlalchemy.orm.util import LoaderCriteriaOption

from edu_domain.errors import InvalidState
from edu_domain.model import Entity
from edu_domain.model.base import validate_contents
from edu_domain.ports import ChangeKind
from edu_infra.sqlalchemy.guard import BOUND, TENANT_PARAM, predicates
from edu_infra.sqlalchemy.options import ENTITY, INCLUDE_DELETED, UOW_KEY

T = TypeVar("T")


class SessionOwner(Protocol):
    """What the ORM events need of the unit of work that owns a session
    (`transaction.UowTransaction`)."""

    tenant: UUID | None

    def sync_bind(self) -> Connection | None: ...
    def read_criteria(
        self, cls: type[Any], *, include_deleted: bool
    ) -> ColumnElement[bool] | None: ...
    def capture_values(self) -> None: ...
    def check_write(self, entity: Entity) -> None: ...
    def stamp_update(self, entity: Entity) -> None: ...
    def record_change(self, entity: Entity, kind: ChangeKind) -> None: ...


class UowSession(Session):
    """The unit of work's Session: the class the listeners are attached to.

    On PostgreSQL a unit of work holds one connection for its whole life (its reads run on
    the driver directly, see `reads.py`); the session writes through that same connection
    and transaction instead of checking out one of its own.
    """

    def get_bind(self, mapper: Any = None, **kw: Any) -> Any:
        uow = uow_of(self)
        if uow is not None:
            connection = uow.sync_bind()
            if connection is not None:
                return connection
        return super().get_bind(mapper, **kw)


def weakly(method: Callable[[], T]) -> Callable[[], T]:
    """`method` without a strong reference to its object: a unit of work's parts calling
    back into it make no reference cycle, so it is freed when dropped, not by the cyclic GC
    (whose full collections pause the event loop)."""
    ref = weakref.WeakMethod(method)

    def call() -> T:
        bound = ref()
        if bound is None:
            raise InvalidState("this unit of work is gone")
        return bound()

    return call


def uow_of(session: Session) -> SessionOwner | None:
    return cast("SessionOwner | None", session.info.get(UOW_KEY))


@event.listens_for(UowSession, "do_orm_execute")
def _global_filters(state: ORMExecuteState) -> None:
    uow = uow_of(state.session)
    if uow is None or state.is_column_load or state.is_relationship_load:
        return
    include_deleted = bool(state.execution_options.get(INCLUDE_DELETED, False))
    mappers = list(state.all_mappers)
    named = state.execution_options.get(ENTITY)  # aggregate selects name their entity
    if named is not None:
        mapper = inspect(named)
        if mapper not in mappers:
            mappers.append(mapper)
    params = state.parameters
    if params is not None and not isinstance(params, Mapping):  # executemany: built per call
        _filter_by_value(state, uow, [m.class_ for m in mappers], include_deleted)
        return
    scoped = uow.tenant is not None
    options = [
        option
        for mapper in mappers
        if (option := _criteria(mapper, scoped, include_deleted)) is not None
    ]
    if options:
        state.statement = state.statement.options(*options)
        if scoped:
            state.parameters = {**(params or {}), TENANT_PARAM: uow.tenant}


#: The global filter of each (mapper, scoped, include_deleted), built once. The tenant is
#: the bound parameter TENANT_PARAM, given with every execution: a statement that misses it
#: fails instead of reading unfiltered.
_CRITERIA: dict[tuple[Mapper[Any], bool, bool], LoaderCriteriaOption | None] = {}


def _criteria(
    mapper: Mapper[Any], scoped: bool, include_deleted: bool
) -> LoaderCriteriaOption | None:
    key = (mapper, scoped, include_deleted)
    if key not in _CRITERIA:
        cls = mapper.class_
        parts: list[ColumnElement[bool]] = []
        if isinstance(cls, type) and issubclass(cls, Entity):
            parts = predicates(
                cls, tenant=BOUND if scoped else None, include_deleted=include_deleted
            )
        _CRITERIA[key] = (
            with_loader_criteria(cls, and_(*parts), include_aliases=True) if parts else None
        )
    return _CRITERIA[key]


def _filter_by_value(
    state: ORMExecuteState, uow: SessionOwner, classes: list[Any], include_deleted: bool
) -> None:
    options = []
    for cls in classes:
        criteria = uow.read_criteria(cls, include_deleted=include_deleted)
        if criteria is not None:
            options.append(with_loader_criteria(cls, criteria, include_aliases=True))
    if options:
        state.statement = state.statement.options(*options)


@event.listens_for(UowSession, "after_rollback")
def _keep_values(session: Session) -> None:
    """Runs before SQLAlchemy expires every instance of a rolled-back transaction."""
    uow = uow_of(session)
    if uow is not None:
        uow.capture_values()


@event.listens_for(UowSession, "before_flush")
def _stamp_changes(session: Session, _flush: UOWTransaction, _instances: Any) -> None:
    uow = uow_of(session)
    if uow is None:
        return
    for obj in list(session.dirty):
        if isinstance(obj, Entity) and session.is_modified(obj, include_collections=False):
            uow.check_write(obj)
            validate_contents(obj)
            uow.stamp_update(obj)


@event.listens_for(UowSession, "after_flush")
def _collect_changes(session: Session, _flush: UOWTransaction) -> None:
    uow = uow_of(session)
    if uow is None:
        return
    for obj in session.new:
        if isinstance(obj, Entity):
            uow.record_change(obj, ChangeKind.INSERT)
    for obj in session.dirty:
        if isinstance(obj, Entity) and session.is_modified(obj, include_collections=False):
            uow.record_change(obj, ChangeKind.UPDATE)
    for obj in session.deleted:
        if isinstance(obj, Entity):
            uow.record_change(obj, ChangeKind.DELETE)


__all__ = [
    "SessionOwner",
    "UowSession",
    "uow_of",
    "weakly",
]
