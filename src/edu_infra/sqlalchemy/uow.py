"""The SQL unit of work: lifecycle, identity map, change tracking and events.

Rows move through a row path (`rows.RowPath`: the PostgreSQL driver path or the ORM path)
that the factory picks; this class never asks which one it has. Why it looks as it does:
- `expire_on_commit=False` and no relationships: nothing ever lazy-loads, so entities
  stay usable after commit, rollback and close (rollback expunges them first, so their
  attributes are never expired either).
- Failures roll the whole unit of work back (`transaction.py`); it stays usable.
- Identity-map hits skip the SQL filters, so `get` checks tenant and soft delete again in
  Python, by the same rule (`edu_domain.visibility`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any, Protocol, TypeVar
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.base import instance_state
from sqlalchemy.sql import Executable, Select

from edu_domain.errors import ConcurrencyConflict, InvalidState, NotFound, ReadOnlyError
from edu_domain.imports import check_rows
from edu_domain.model import Entity
from edu_domain.ports import AfterCommit, UnitOfWork, check_totals
from edu_domain.query import Filter, Group, Page, Query, Tally, bind, encode_cursor
from edu_domain.uow_checks import (
    check_batch_size,
    check_callback,
    check_entities,
    check_entity,
    check_entity_class,
    check_flag,
    check_id,
    check_lock,
    check_query,
    check_read,
    undone_on_failure,
)
from edu_domain.visibility import visible
from edu_infra.consistency import ConsistencyToken
from edu_infra.outbox.routing import EventRouting
from edu_infra.sqlalchemy.changes import ChangeLog
from edu_infra.sqlalchemy.deletes import adopt_changes, forget_cascaded, mirror
from edu_infra.sqlalchemy.engine import Database
from edu_infra.sqlalchemy.grouping import grouped
from edu_infra.sqlalchemy.identity import Identities, identity_key
from edu_infra.sqlalchemy.imports import import_rows
from edu_infra.sqlalchemy.mapping import table_of
from edu_infra.sqlalchemy.options import UOW_KEY
from edu_infra.sqlalchemy.routed_rows import RoutedRows
from edu_infra.sqlalchemy.rows import RowPath
from edu_infra.sqlalchemy.session import UowSession, weakly
from edu_infra.sqlalchemy.statistics import bulk_inserts
from edu_infra.sqlalchemy.streams import streamed
from edu_infra.sqlalchemy.transaction import UowTransaction


class UowConfig(Protocol):
    """What a unit of work takes from its factory (`factory.py`), shared by all it opens."""

    database: Database
    routing: EventRouting

    def change_log(self, *, tenant: UUID | None, actor: UUID | None) -> ChangeLog: ...
    def row_path(
        self,
        identities: Identities,
        changes: ChangeLog,
        *,
        read_only: bool,
        after: ConsistencyToken | None,
    ) -> RowPath: ...


log = logging.getLogger("edu_infra")
E = TypeVar("E", bound=Entity)
T = TypeVar("T")


class SqlUnitOfWork(UnitOfWork):
    """`edu_domain.ports.UnitOfWork` on SQLAlchemy (PostgreSQL, SQLite)."""

    def __init__(
        self,
        factory: UowConfig,
        *,
        tenant: UUID | None,
        actor: UUID | None,
        read_only: bool = False,
        after: ConsistencyToken | None = None,
    ) -> None:
        self.tenant = tenant
        self.actor = actor
        self.read_only = read_only
        self._factory = factory
        self.lock_timeout_ms = factory.database.settings.lock_timeout_ms
        self._changes = factory.change_log(tenant=tenant, actor=actor)
        self._held = Identities(weakly(self._new_session))
        #: the row path (for adapters and tests that need the driver connection)
        self.rows: RowPath = factory.row_path(
            self._held, self._changes, read_only=read_only, after=after
        )
        self._callbacks: list[AfterCommit] = []
        self._tx = UowTransaction(
            self.rows, self._held, self._changes, self._callbacks.clear, read_only=read_only
        )
        self._closed = False
        self._undelivered: list[UUID] = []  # committed outbox rows, delivered at close

    @property
    def consistency_token(self) -> str | None:
        """With read replicas: the WAL position of this unit of work's last commit that wrote
        (README, *Read replicas*); None before one."""
        token = self.rows.token if isinstance(self.rows, RoutedRows) else None
        return None if token is None else str(token)

    # ------------------------------------------------------------------ lifecycle

    @property
    def session(self) -> AsyncSession:
        """The underlying session (for adapters and tests; raw SQL stays under RLS).

        Whoever holds it can run raw SQL that changes the connection itself, so the
        connection is discarded, not pooled, when this unit of work closes.
        """
        self._ensure_open()
        self._held.attach_loaded()
        self.rows.taint()
        return self._held.session

    def _new_session(self) -> AsyncSession:
        session = AsyncSession(
            self._factory.database.engine,
            sync_session_class=UowSession,
            expire_on_commit=False,
            autoflush=True,
        )
        session.info[UOW_KEY] = self._tx  # the ORM events' `SessionOwner`
        return session

    async def begin(self) -> None:
        self._ensure_open()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            await self._tx.close()
        finally:
            keys, self._undelivered = self._undelivered, []
            await self._factory.routing.after_close(keys, self.tenant)

    async def rollback(self) -> None:
        self._ensure_open()
        await self._tx.reset()

    def after_commit(self, callback: AfterCommit) -> None:
        self._ensure_open()
        check_callback(callback)
        self._callbacks.append(callback)

    async def flush(self) -> None:
        self._ensure_open()
        if self._held.has_pending():
            await self._tx.write(self.rows.update)

    async def commit(self) -> None:
        """Flush, write the events' outbox rows, commit; then the after-commit work
        (`edu_infra.outbox.EventRouting`: callbacks, events, listeners)."""
        self._ensure_open()
        if self._held.has_pending():
            await self._tx.write(self.rows.update)
        events = self._held.pull_events()
        outgoing = await self._tx.enqueue(self._factory.routing, events, self.tenant)
        await self._tx.write(self._tx.commit, begin=False)
        callbacks = list(self._callbacks)
        self._callbacks.clear()
        changes = self._changes.take()
        self._held.committed()
        routing = self._factory.routing
        self._undelivered += await routing.after_commit(callbacks, outgoing, changes, self.tenant)
        bulk = bulk_inserts(changes)
        if bulk:  # large bulk inserts leave the planner's statistics stale
            await self.rows.refresh_statistics(bulk)

    async def execute(self, statement: Executable) -> list[Any]:
        """One of edu-core's own Core statements (the outbox's) in this transaction, and its
        rows. Unlike `session`, it leaves the connection poolable: no raw SQL runs."""
        self._ensure_open()
        if not isinstance(statement, Select):
            self._writable()  # before any SQL, on every server (SQLite has no read-only BEGIN)
        rows: list[Any] = []

        async def run() -> None:
            result = await self._held.session.execute(statement)
            if getattr(result, "returns_rows", True):
                rows.extend(result.all())

        await self._tx.write(run)
        return rows

    # ------------------------------------------------------------------ reads

    async def get(
        self, cls: type[E], id: UUID, *, include_deleted: bool = False, lock: bool = False
    ) -> E | None:
        self._ensure_open()
        check_entity_class(cls)
        key = check_id(id)
        check_flag("include_deleted", include_deleted)
        check_lock(lock, read_only=self.read_only)
        obj = await self._tx.read(
            lambda: self.rows.get(cls, key, include_deleted=include_deleted, lock=lock)
        )
        if obj is None or not self._visible(obj, include_deleted):
            return None
        return self._held.track(obj)  # type: ignore[no-any-return]

    async def find(
        self, cls: type[E], query: Any = None, *, include_deleted: bool = False
    ) -> Page[E]:
        self._ensure_open()
        check_read(cls, query, include_deleted)
        bound = bind(cls, query)
        items: list[Any] = await self._tx.read(
            lambda: self.rows.page(bound, include_deleted=include_deleted)
        )
        next_cursor = None
        if bound.limit is not None and len(items) > bound.limit:
            items = items[: bound.limit]
            position = [getattr(items[-1], order.field) for order in bound.ordering]
            next_cursor = encode_cursor(cls, bound.ordering, position)
        for item in items:
            self._held.track(item)
        return Page(tuple(items), next_cursor)

    def stream(
        self, cls: type[E], query: Any = None, *, batch_size: int = 1_000
    ) -> AsyncIterator[E]:
        self._ensure_open()
        check_entity_class(cls)
        check_query(query)
        check_batch_size(batch_size)
        return streamed(
            self._tx,
            self.rows,
            self._held,
            bind(cls, query),
            batch_size,
            still_open=self._ensure_open,
            visible=lambda item: self._visible(item, False),
        )

    async def count(self, cls: type[E], query: Any = None, *, include_deleted: bool = False) -> int:
        self._ensure_open()
        check_read(cls, query, include_deleted)
        bound = bind(cls, query)
        return await self._tx.read(lambda: self.rows.count(bound, include_deleted=include_deleted))

    async def count_by(
        self,
        cls: type[E],
        by: Sequence[str],
        query: Any = None,
        *,
        measures: Mapping[str, Filter] | None = None,
    ) -> list[Group]:
        self._ensure_open()
        groups, _ = await grouped(self._tx, self.rows, cls, by, query, measures, [])
        return groups

    async def tally(
        self,
        cls: type[E],
        by: Sequence[str],
        query: Any = None,
        *,
        measures: Mapping[str, Filter] | None = None,
        totals: Mapping[str, tuple[type[Entity], Query | None]] | None = None,
    ) -> Tally:
        checked = check_totals(totals)
        self._ensure_open()
        groups, counted = await grouped(self._tx, self.rows, cls, by, query, measures, checked)
        if counted is None:  # no row of `cls` at all: the totals were not read
            counted = {name: await self.count(other, q) for name, other, q in checked}
        return Tally(tuple(groups), counted)

    # ------------------------------------------------------------------ writes

    async def add(self, entity: Entity) -> None:
        self._ensure_open()
        check_entity(entity)

        async def insert() -> None:
            self._writable()
            self._changes.check_new(entity, self._held)
            await self.rows.insert(entity)

        await self._tx.write(insert, subject=entity)

    async def add_all(self, entities: Iterable[Entity]) -> None:
        self._ensure_open()
        batch = check_entities(entities)

        async def insert_all() -> None:
            self._writable()
            self._changes.check_batch(batch, self._held)
            await self.rows.copy(batch)

        if batch:
            await self._tx.write(insert_all, subject=batch[0], also=batch)

    async def import_rows(self, cls: type[Entity], rows: Iterable[Mapping[str, Any]]) -> int:
        self._ensure_open()
        checked, source = check_entity_class(cls), check_rows(rows)
        written: list[int] = []

        async def run() -> None:
            self._writable()
            written.append(await import_rows(self.rows, self._changes, checked, source))

        await self._tx.write(run)
        return written[0]

    async def delete(self, entity: Entity, *, hard: bool = False) -> None:
        self._ensure_open()
        check_entity(entity)
        check_flag("hard", hard)

        async def remove() -> None:
            self._writable()
            obj = await self._attached(entity)
            if hard:
                self._held.attach_loaded()
                session = self._held.session
                await forget_cascaded(session, obj, self._changes)
                await session.delete(obj)
                self._held.hard_deleted.append(obj)
                await session.flush()
            else:
                if obj.deleted_at is None:
                    obj.deleted_at = self._changes.clock.now()
                    obj.deleted_by = self.actor
                await self.rows.update()
                mirror(obj, entity)

        with undone_on_failure(entity):
            await self._tx.write(remove, subject=entity, operation="delete" if hard else "write")

    async def restore(self, entity: Entity) -> None:
        self._ensure_open()
        check_entity(entity)

        async def undelete() -> None:
            self._writable()
            obj = await self._attached(entity)
            if obj.deleted_at is not None:
                obj.deleted_at = None
                obj.deleted_by = None
                await self.rows.update()
                mirror(obj, entity)

        with undone_on_failure(entity):
            await self._tx.write(undelete, subject=entity)

    # ------------------------------------------------------------------ internals

    def _ensure_open(self) -> None:
        if self._closed:
            raise InvalidState("this unit of work is closed")

    def _writable(self) -> None:
        if self.read_only:
            raise ReadOnlyError()

    def _visible(self, obj: Entity, include_deleted: bool) -> bool:
        return visible(type(obj), obj.__dict__, tenant=self.tenant, include_deleted=include_deleted)

    async def _attached(self, entity: Entity) -> Entity:
        """This unit of work's instance of `entity` (loaded by id if need be), or NotFound;
        a stale detached copy is a ConcurrencyConflict."""
        cls = type(entity)
        table_of(cls)
        self._changes.check_write(entity)
        if (
            self._held.in_session(entity)
            or self._held.known(identity_key(cls, entity.id)) is entity
        ):
            return entity  # held (no `get`: its read would flush the caller's changes first)
        found = await self.get(cls, entity.id, include_deleted=True)
        if found is None or (instance_state(entity).key is None and found is not entity):
            raise NotFound(cls.__name__, entity.id)
        if found is not entity:
            if found.version != entity.version:
                raise ConcurrencyConflict(cls.__name__, entity.id)
            adopt_changes(found, entity)  # the caller's changes are written with the verb
        return found


__all__ = ["SqlUnitOfWork"]
