"""The SQL unit of work: one AsyncSession, one transaction at a time, one tenant (or none).

Why it looks the way it does:
- `expire_on_commit=False` and no relationships: nothing ever lazy-loads, so entities
  stay usable after commit, rollback and close (rollback expunges them first, so their
  attributes are never expired either).
- Any failure of a write (add, add_all, delete, restore, flush, commit) and any driver
  failure of a read rolls the whole unit of work back and empties the identity map:
  PostgreSQL has aborted the transaction anyway, and a half-applied unit of work is
  worse than none. The unit of work stays usable for a fresh transaction.
- `Session.get` answers identity-map hits without SQL, so loader criteria never see
  them: `get` checks tenant and soft delete again in Python.
- On PostgreSQL the unit of work holds one connection (`pgconnection.UowConnection`);
  get, find, count and count_by run precompiled SQL on the driver (`reads.py`), and the
  entities they load wait, detached with their identity, until the session is needed:
  then they are attached (no SQL) and any change made to them is flushed as the ORM would.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Literal, Protocol, TypeVar
from uuid import UUID

import attrs
from sqlalchemy import ColumnElement, and_, func, select, tuple_
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import object_session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.base import NO_VALUE, instance_state

from edu_domain.errors import (
    AlreadyExists,
    ConcurrencyConflict,
    DomainError,
    InvalidState,
    NotFound,
    TenantViolation,
    ValidationError,
)
from edu_domain.model import ENTITY_TYPES, DomainEvent, Entity, Organization
from edu_domain.model.base import identical, validate_contents
from edu_domain.ports import (
    AfterCommit,
    Change,
    ChangeKind,
    Clock,
    CommitListener,
    EventPublisher,
    UnitOfWork,
    check_totals,
)
from edu_domain.query import (
    Filter,
    Group,
    Page,
    Query,
    Tally,
    bind,
    encode_cursor,
)
from edu_domain.uow_checks import (
    check_batch_size,
    check_callback,
    check_entities,
    check_entity,
    check_entity_class,
    check_flag,
    check_group_fields,
    check_id,
    check_measures,
    check_query,
    check_read,
)
from edu_domain.visibility import visible
from edu_infra.sqlalchemy.bulk import copy_insert
from edu_infra.sqlalchemy.compiler import QueryCompiler
from edu_infra.sqlalchemy.engine import Database
from edu_infra.sqlalchemy.errors import (
    DatabaseError,
    DbFailure,
    classify,
    is_driver_error,
    to_domain_error,
)
from edu_infra.sqlalchemy.guard import predicates
from edu_infra.sqlalchemy.mapping import table_of
from edu_infra.sqlalchemy.options import INCLUDE_DELETED, UOW_KEY
from edu_infra.sqlalchemy.pgconnection import TransactionSettings, UowConnection
from edu_infra.sqlalchemy.reads import ID, TENANT, EntityLoader, PgReads, Prepared
from edu_infra.sqlalchemy.sa_internals import mark_committed
from edu_infra.sqlalchemy.session import UowSession


class UowConfig(Protocol):
    """What a unit of work takes from its factory (`factory.py`), shared by all it opens."""

    clock: Clock
    database: Database
    compiler: QueryCompiler
    reads: PgReads | None
    publisher: EventPublisher | None
    listeners: tuple[CommitListener, ...]


log = logging.getLogger("edu_infra")
E = TypeVar("E", bound=Entity)
T = TypeVar("T")


class SqlUnitOfWork(UnitOfWork):
    """`edu_domain.ports.UnitOfWork` on SQLAlchemy's AsyncSession (PostgreSQL, SQLite)."""

    def __init__(self, factory: UowConfig, *, tenant: UUID | None, actor: UUID | None) -> None:
        self.tenant = tenant
        self.actor = actor
        self._factory = factory
        self._clock: Clock = factory.clock
        self.lock_timeout_ms = factory.database.settings.lock_timeout_ms
        self._compiler: QueryCompiler = factory.compiler
        self._session_obj: AsyncSession | None = None
        self._reads: PgReads | None = factory.reads
        self._holder: UowConnection | None = None
        if self._reads is not None:
            database = factory.database
            self._holder = UowConnection(
                database.engine,
                tenant,
                TransactionSettings(database.settings.schema, self.lock_timeout_ms),
                ping=database.settings.pool_pre_ping,
                attempts=database.settings.pool_size + database.settings.max_overflow + 1,
            )
        #: entities the driver-level reads loaded (and bulk inserts wrote), detached, until
        #: the session is needed; weak like the session's identity map (`_tracked` keeps
        #: what reads hand out)
        self._loaded: weakref.WeakValueDictionary[Any, Entity] = weakref.WeakValueDictionary()
        self._callbacks: list[AfterCommit] = []
        self._changes: dict[tuple[type[Entity], UUID], Change] = {}
        self._tracked: dict[int, Entity] = {}
        self._hard_deleted: list[Entity] = []
        self._copied_events: list[DomainEvent] = []
        self._captured: list[tuple[Entity, dict[str, Any]]] = []
        #: entities the driver inserted in this transaction (transient again on rollback)
        self._inserted: weakref.WeakSet[Entity] = weakref.WeakSet()
        self._closed = False

    # ------------------------------------------------------------------ lifecycle

    @property
    def session(self) -> AsyncSession:
        """The underlying session (for adapters and tests; raw SQL stays under RLS).

        Whoever holds it can run raw SQL that changes the connection itself, so the
        connection is discarded, not pooled, when this unit of work closes.
        """
        self._ensure_open()
        self._attach_loaded()
        if self._holder is not None:
            self._holder.tainted = True
        return self._session

    @property
    def _session(self) -> AsyncSession:
        """The session, made on first use (a read-only PostgreSQL unit of work never needs one)."""
        if self._session_obj is None:
            session = AsyncSession(
                self._factory.database.engine,
                sync_session_class=UowSession,
                expire_on_commit=False,
                autoflush=True,
            )
            session.info[UOW_KEY] = self
            self._session_obj = session
        return self._session_obj

    def sync_bind(self) -> Connection | None:
        """The connection the session must use (PostgreSQL: the unit of work's own)."""
        return self._holder.sync_connection() if self._holder is not None else None

    def _attach_loaded(self) -> None:
        """Hand the entities the driver-level reads loaded to the session (persistent, no SQL)."""
        if self._loaded:
            loaded, self._loaded = list(self._loaded.values()), weakref.WeakValueDictionary()
            sync = self._session.sync_session
            for obj in loaded:
                state = instance_state(obj)
                if state.deleted or state.was_deleted or state.key is None:
                    continue  # gone from the database: nothing to attach
                if sync.identity_map.get(state.key) is not None:
                    continue  # already the session's (see `_adopt`)
                sync.add(obj)

    def _known(self, identity: Any) -> Entity | None:
        found = self._loaded.get(identity)
        if found is None and self._session_obj is not None:
            found = self._session_obj.sync_session.identity_map.get(identity)
        return found

    def _adopt(self, loader: EntityLoader, record: Any, *, refresh: bool) -> Entity:
        """The unit of work's entity for a row: the one it already holds, or a new one."""
        identity = loader.identity(record[loader.id_index])
        existing = self._known(identity) if self._loaded or self._session_obj else None
        if existing is not None:
            if refresh:
                loader.refresh(existing, record)
            return existing
        obj = loader.build(record, identity)
        if self._session_obj is not None:  # one object per row: the session has others
            self._session_obj.sync_session.add(obj)
        else:
            self._loaded[identity] = obj
        return obj

    async def _driver(self) -> Any:
        assert self._holder is not None
        return await self._holder.begin()

    async def begin(self) -> None:
        self._ensure_open()

    async def close(self) -> None:
        if self._closed:
            return
        try:
            await self._reset()
        finally:
            self._closed = True
            try:
                if self._session_obj is not None:
                    await self._session_obj.close()
            except Exception:  # closing must not fail: the connection is discarded
                log.warning("closing the unit of work's session failed", exc_info=True)
            if self._holder is not None:
                await self._holder.close()

    async def rollback(self) -> None:
        self._ensure_open()
        await self._reset()

    def after_commit(self, callback: AfterCommit) -> None:
        self._ensure_open()
        check_callback(callback)
        self._callbacks.append(callback)

    async def flush(self) -> None:
        self._ensure_open()
        if self._has_pending():
            await self._write(self._flush, attach=False)

    async def commit(self) -> None:
        self._ensure_open()
        if self._has_pending():
            await self._write(self._flush, attach=False)
        events = self._pull_events()
        await self._write(self._commit_transaction, begin=False, attach=False)
        callbacks, self._callbacks = self._callbacks, []
        changes, self._changes = list(self._changes.values()), {}
        self._hard_deleted = []
        self._inserted = weakref.WeakSet()
        await self._after_commit(callbacks, events, changes)

    async def _flush(self) -> None:
        """Write pending changes: on the driver when only loaded entities changed (PostgreSQL),
        else through the session, which adopts the loaded entities first."""
        session = self._session_obj
        busy = session is not None and bool(
            session.sync_session.new or session.sync_session.deleted or session.sync_session.dirty
        )
        if self._reads is not None and not busy:
            await self._update_loaded(self._reads)
            return
        self._attach_loaded()
        await self._session.flush()

    async def _update_loaded(self, reads: PgReads) -> None:
        """One versioned UPDATE per changed loaded entity, as the ORM's flush would send."""
        for obj in list(self._loaded.values()):
            state = instance_state(obj)
            if not state.modified:
                continue
            values = obj.__dict__
            committed = state.committed_state
            changed = [
                name
                for name, old in committed.items()
                if name in values and (old is NO_VALUE or not identical(old, values[name]))
            ]
            if not changed:
                mark_committed(state, values)
                continue
            self.check_write(obj)
            validate_contents(obj)
            self.stamp_update(obj)
            old_version = committed.get("version", values["version"])
            columns = sorted({*changed, "updated_at", "updated_by"} - {"version"})
            update = reads.update(type(obj), tuple(columns))
            driver = await self._driver()
            status = await driver.execute(
                update.sql,
                *_row_args(lambda u=update, o=obj, v=old_version: u.args(o, v)),  # type: ignore[misc]
            )
            if status != "UPDATE 1":
                raise ConcurrencyConflict(type(obj).__name__, obj.id)
            values["version"] = old_version + 1
            mark_committed(state, values)
            self.record_change(obj, ChangeKind.UPDATE)

    async def _commit_transaction(self) -> None:
        if self._session_obj is not None:
            await self._session_obj.commit()
        if self._holder is not None:
            await self._holder.commit()

    def _has_pending(self) -> bool:
        """True when a flush has work: session changes, or changed entities not yet attached."""
        if any(instance_state(obj).modified for obj in self._loaded.values()):
            return True
        if self._session_obj is None:
            return False
        sync = self._session_obj.sync_session
        return bool(sync.new or sync.deleted or sync.dirty)

    async def _after_commit(
        self, callbacks: Sequence[AfterCommit], events: list[DomainEvent], changes: list[Change]
    ) -> None:
        for callback in callbacks:
            try:
                await callback()
            except Exception:
                log.exception("an after-commit callback failed")
        if events and self._factory.publisher is not None:
            try:
                await self._factory.publisher.publish(events)
            except Exception:
                log.exception("publishing domain events failed")
        if changes:
            for listener in self._factory.listeners:
                try:
                    await listener.committed(changes)
                except Exception:
                    log.exception("a commit listener failed")

    # ------------------------------------------------------------------ reads

    async def get(
        self, cls: type[E], id: UUID, *, include_deleted: bool = False, lock: bool = False
    ) -> E | None:
        self._ensure_open()
        check_entity_class(cls)
        key = check_id(id)
        check_flag("include_deleted", include_deleted)
        check_flag("lock", lock)
        if self._reads is not None:
            return await self._get_lean(self._reads, cls, key, include_deleted, lock)
        options = {INCLUDE_DELETED: include_deleted}
        obj = await self._read(
            lambda: self._session.get(
                cls,
                key,
                execution_options=options,
                with_for_update=True if lock else None,
                populate_existing=lock,
            )
        )
        if obj is None or not self._visible(obj, include_deleted):
            return None
        return self._track(obj)

    async def _get_lean(
        self, reads: PgReads, cls: type[E], key: UUID, include_deleted: bool, lock: bool
    ) -> E | None:
        loader = reads.loader(cls)
        existing = self._known(loader.identity(key))
        if existing is not None and not lock:
            return self._track(existing) if self._visible(existing, include_deleted) else None  # type: ignore[return-value]
        prepared = self._compile(
            lambda: reads.get(
                cls, scoped=self.tenant is not None, include_deleted=include_deleted, lock=lock
            )
        )
        args = _bind_args(prepared, {ID: key, TENANT: self.tenant})

        async def fetch() -> Any:
            return await (await self._driver()).fetchrow(prepared.sql, *args)

        record = await self._read(fetch)
        if record is None:
            return None
        obj = self._adopt(loader, record, refresh=lock)
        if not self._visible(obj, include_deleted):
            return None
        return self._track(obj)  # type: ignore[return-value]

    async def _fetch(self, sql: str, args: list[Any]) -> list[Any]:
        driver = await self._driver()
        return list(await driver.fetch(sql, *args))

    async def find(
        self, cls: type[E], query: Any = None, *, include_deleted: bool = False
    ) -> Page[E]:
        self._ensure_open()
        check_read(cls, query, include_deleted)
        bound = bind(cls, query)
        items: list[E]
        if self._reads is not None:
            reads = self._reads
            scoped = self.tenant is not None
            prepared, args = self._lean(
                lambda: reads.page(bound, scoped=scoped, include_deleted=include_deleted)
            )
            records = await self._read(lambda: self._fetch(prepared.sql, args))
            loader = reads.loader(cls)
            items = [self._adopt(loader, r, refresh=False) for r in records]  # type: ignore[misc]
        else:
            stmt = self._compile(
                lambda: self._compiler.select_page(bound).execution_options(
                    **{INCLUDE_DELETED: include_deleted}
                )
            )
            rows: Sequence[E] = await self._read(lambda: _scalars(self._session, stmt))
            items = list(rows)
        next_cursor = None
        if bound.limit is not None and len(items) > bound.limit:
            items = items[: bound.limit]
            last = items[-1]
            position = [getattr(last, order.field) for order in bound.ordering]
            next_cursor = encode_cursor(cls, bound.ordering, position)
        for item in items:
            self._track(item)
        return Page(tuple(items), next_cursor)

    async def stream(
        self, cls: type[E], query: Any = None, *, batch_size: int = 1_000
    ) -> AsyncIterator[E]:
        self._ensure_open()
        check_entity_class(cls)
        check_query(query)
        check_batch_size(batch_size)
        bound = attrs.evolve(bind(cls, query), skip=0, limit=None, after=None)
        self._attach_loaded()
        stmt = self._compile(
            lambda: self._compiler.select_page(bound).execution_options(yield_per=batch_size)
        )
        result = await self._read(lambda: self._session.stream_scalars(stmt))
        try:
            while True:
                item = await self._read(lambda: _next_or_none(result))
                if item is None:
                    return
                yield item
        finally:
            try:
                await result.close()
            except Exception:  # closing a cursor on a dead connection
                log.debug("closing a stream failed", exc_info=True)

    async def count(self, cls: type[E], query: Any = None, *, include_deleted: bool = False) -> int:
        self._ensure_open()
        check_read(cls, query, include_deleted)
        bound = bind(cls, query)
        if self._reads is not None:
            reads = self._reads
            scoped = self.tenant is not None
            prepared, args = self._lean(
                lambda: reads.count(bound, scoped=scoped, include_deleted=include_deleted)
            )

            async def fetch() -> Any:
                return await (await self._driver()).fetchval(prepared.sql, *args)

            return int(await self._read(fetch) or 0)
        stmt = self._compile(
            lambda: self._compiler.select_count(bound).execution_options(
                **{INCLUDE_DELETED: include_deleted}
            )
        )
        value = await self._read(lambda: self._session.scalar(stmt))
        return int(value or 0)

    async def count_by(
        self,
        cls: type[E],
        by: Sequence[str],
        query: Any = None,
        *,
        measures: Mapping[str, Filter] | None = None,
    ) -> list[Group]:
        groups, _ = await self._grouped(cls, by, query, measures, [])
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
        groups, counted = await self._grouped(cls, by, query, measures, checked)
        if counted is None:  # no row of `cls` at all: the totals were not read
            counted = {name: await self.count(other, q) for name, other, q in checked}
        return Tally(tuple(groups), counted)

    async def _grouped(
        self,
        cls: type[E],
        by: Sequence[str],
        query: Any,
        measures: Mapping[str, Filter] | None,
        totals: list[tuple[str, type[Entity], Query | None]],
    ) -> tuple[list[Group], dict[str, int] | None]:
        """Groups (one statement), and the totals when the statement could carry them."""
        self._ensure_open()
        names = check_group_fields(check_entity_class(cls), by)
        bound = bind(cls, check_query(query))
        measure_items = list(check_measures(cls, measures).items())
        filters = [flt for _, flt in measure_items]
        others = [(other, bind(other, q).filter) for _, other, q in totals]
        for other, _ in others:
            table_of(other)
        rows: Sequence[Any]
        if self._reads is not None:
            reads = self._reads
            scoped = self.tenant is not None
            prepared, args = self._lean(
                lambda: reads.groups(
                    cls, names, bound.filter, filters, scoped=scoped, others=others
                )
            )
            records = await self._read(lambda: self._fetch(prepared.sql, args))
            rows = [prepared.row(record) for record in records]
        else:
            guarded = [
                (other, flt, _criteria_list(self.read_criteria(other, include_deleted=False)))
                for other, flt in others
            ]
            stmt = self._compile(
                lambda: self._compiler.select_groups(
                    cls, names, bound.filter, filters, others=guarded
                )
            )
            rows = await self._read(lambda: _rows(self._session, stmt))
        width = len(names)
        first_total = width + 1 + len(measure_items)
        groups = [
            Group(
                key=tuple(row[:width]),
                count=int(row[width]),
                measures={
                    name: int(row[width + 1 + i]) for i, (name, _) in enumerate(measure_items)
                },
            )
            for row in rows
        ]
        counted = (
            {name: int(rows[0][first_total + j] or 0) for j, (name, _, _) in enumerate(totals)}
            if rows
            else None
        )
        return [g for g in groups if g.count > 0], counted

    def _lean(
        self, prepare: Callable[[], tuple[Prepared, dict[str, Any]]]
    ) -> tuple[Prepared, list[Any]]:
        """A compiled read of the driver path and its arguments (this unit of work's tenant)."""
        prepared, values = self._compile(prepare)
        return prepared, _bind_args(prepared, {**values, TENANT: self.tenant})

    @staticmethod
    def _compile(build: Callable[[], T]) -> T:
        """Build a statement; a SQLAlchemy error here is a bug, still reported as a DomainError."""
        try:
            return build()
        except Exception as error:
            if not is_driver_error(error):
                raise
            log.exception("building a statement failed")
            raise DatabaseError(f"could not build the query: {error}") from None

    # ------------------------------------------------------------------ writes

    async def add(self, entity: Entity) -> None:
        self._ensure_open()
        check_entity(entity)
        if self._reads is not None:
            reads = self._reads
            await self._write(lambda: self._insert_row(reads, entity), subject=entity, attach=False)
            return

        async def insert() -> None:
            self._check_new(entity)
            self._stamp_insert(entity)
            self._session.add(entity)
            self._track(entity)
            await self._session.flush()

        await self._write(insert, subject=entity)

    def _check_insertable(self, reads: PgReads, entity: Entity) -> Any:
        """`_check_new` of the driver path (no session needed); the entity's identity key."""
        cls = type(entity)
        table_of(cls)
        if not isinstance(entity, Entity):
            raise ValidationError("entity", "not an entity")
        self.check_write(entity)
        validate_contents(entity)
        identity = reads.loader(cls).identity(entity.id)
        state = instance_state(entity)
        if state.key is not None or state.session_id is not None or self._known(identity):
            raise AlreadyExists(cls.__name__, "id")
        return identity

    def _inserted_now(self, entity: Entity, identity: Any) -> None:
        """A row the driver just inserted: persistent, this unit of work's only object for it."""
        mark_persistent(entity, identity)
        self._inserted.add(entity)
        if self._session_obj is not None:  # one object per row: the session may load it
            self._session_obj.sync_session.add(entity)
        else:
            self._loaded[identity] = entity

    async def _insert_row(self, reads: PgReads, entity: Entity) -> None:
        """One INSERT on the driver (PostgreSQL): what a flush of one new entity would send."""
        identity = self._check_insertable(reads, entity)
        if self._has_pending():  # earlier changes first, in the order they were made
            await self._flush()
        self._stamp_insert(entity)
        entity.__dict__["version"] = 1
        insert = reads.insert(type(entity))
        driver = await self._driver()
        await driver.execute(insert.sql, *_row_args(lambda: insert.args(entity)))
        self._inserted_now(entity, identity)
        self._track(entity)
        self.record_change(entity, ChangeKind.INSERT)

    async def add_all(self, entities: Iterable[Entity]) -> None:
        self._ensure_open()
        batch = check_entities(entities)

        reads = self._reads

        async def insert_all() -> None:
            seen: set[tuple[type[Entity], UUID]] = set()
            for entity in batch:
                if reads is not None:
                    self._check_insertable(reads, entity)
                else:
                    self._check_new(entity)
                key = (type(entity), entity.id)
                if key in seen:
                    raise AlreadyExists(type(entity).__name__, "id")
                seen.add(key)
            for entity in batch:
                self._stamp_insert(entity)
            if reads is not None:
                if self._has_pending():  # earlier changes first
                    await self._flush()
                await self._copy(reads, batch)
                # not tracked: the weak identity map keeps what the caller keeps, so a bulk
                # import stays in bounded memory; their queued events are taken now
                for entity in batch:
                    self._copied_events.extend(entity.pull_events())
                return
            await self._session.flush()
            self._session.add_all(batch)
            await self._session.flush()
            for entity in batch:
                self._track(entity)

        if batch:
            await self._write(insert_all, subject=batch[0], also=batch, attach=reads is None)

    async def _copy(self, reads: PgReads, batch: list[Entity]) -> None:
        driver = await self._driver()
        for cls in ENTITY_TYPES:
            of_class = [e for e in batch if type(e) is cls]
            if not of_class:
                continue
            for entity in of_class:
                entity.__dict__["version"] = 1
            await copy_insert(
                driver, reads.dialect, of_class, schema=self._factory.database.settings.schema
            )
            # persistent now, as if loaded: detached with their identity until the session
            # needs them, held weakly (a bulk import keeps only what the caller keeps)
            loader = reads.loader(cls)
            changes = self._changes
            tenant_field = cls.__tenant_field__
            for entity in of_class:
                self._inserted_now(entity, loader.identity(entity.id))
                key = (cls, entity.id)
                if key not in changes:
                    values = entity.__dict__
                    changes[key] = Change(cls, entity.id, values[tenant_field], ChangeKind.INSERT)

    async def delete(self, entity: Entity, *, hard: bool = False) -> None:
        self._ensure_open()
        check_entity(entity)
        check_flag("hard", hard)

        async def remove() -> None:
            obj = await self._attached(entity, attach=hard)
            if hard:
                await self._forget_cascaded(obj)
                await self._session.delete(obj)
                self._hard_deleted.append(obj)
                await self._session.flush()
            else:
                if obj.deleted_at is None:
                    obj.deleted_at = self._clock.now()
                    obj.deleted_by = self.actor
                await self._flush()
                _mirror(obj, entity)

        await self._write(
            remove, subject=entity, operation="delete" if hard else "write", attach=hard
        )

    async def restore(self, entity: Entity) -> None:
        self._ensure_open()
        check_entity(entity)

        async def undelete() -> None:
            obj = await self._attached(entity, attach=False)
            if obj.deleted_at is not None:
                obj.deleted_at = None
                obj.deleted_by = None
                await self._flush()
                _mirror(obj, entity)

        await self._write(undelete, subject=entity, attach=False)

    # ------------------------------------------------------------------ hooks for events

    def read_criteria(self, cls: type[Any], *, include_deleted: bool) -> ColumnElement[bool] | None:
        """The global filter of `cls` for this unit of work (None: no filter)."""
        if not (isinstance(cls, type) and issubclass(cls, Entity)):
            return None
        parts = predicates(cls, tenant=self.tenant, include_deleted=include_deleted)
        return and_(*parts) if parts else None

    def check_write(self, entity: Entity) -> None:
        """A tenant unit of work writes only its own organization's entities; ids stay."""
        if _changed_id(entity):  # as the memory adapter says it
            raise ValidationError("id", "the id of a stored entity cannot change")
        if _moved_tenant(entity):
            raise TenantViolation(f"{type(entity).__name__} {entity.id} cannot change organization")
        if self.tenant is not None and _tenant_of(entity) != self.tenant:
            raise TenantViolation(
                f"{type(entity).__name__} {entity.id} belongs to another organization"
            )

    def stamp_update(self, entity: Entity) -> None:
        entity.updated_at = self._clock.now()
        entity.updated_by = self.actor

    def record_change(self, entity: Entity, kind: ChangeKind) -> None:
        key = (type(entity), entity.id)
        previous = self._changes.get(key)
        if previous is not None and kind is ChangeKind.UPDATE:
            return
        if (
            previous is not None
            and previous.kind is ChangeKind.INSERT
            and kind is not (ChangeKind.DELETE)
        ):
            return
        self._changes[key] = Change(type(entity), entity.id, _tenant_of(entity), kind)

    # ------------------------------------------------------------------ internals

    def _ensure_open(self) -> None:
        if self._closed:
            raise InvalidState("this unit of work is closed")

    def _visible(self, obj: Entity, include_deleted: bool) -> bool:
        return visible(type(obj), obj.__dict__, tenant=self.tenant, include_deleted=include_deleted)

    def _track(self, obj: E) -> E:
        self._tracked[id(obj)] = obj
        return obj

    def _check_new(self, entity: Entity) -> None:
        cls = type(entity)
        table_of(cls)
        if not isinstance(entity, Entity):
            raise ValidationError("entity", "not an entity")
        self.check_write(entity)
        validate_contents(entity)
        state = instance_state(entity)
        if state.key is not None or state.session_id is not None:
            raise AlreadyExists(cls.__name__, "id")
        identity = self._session.sync_session.identity_map.get(
            self._session.sync_session.identity_key(cls, entity.id)
        )
        if identity is not None:
            raise AlreadyExists(cls.__name__, "id")

    def _stamp_insert(self, entity: Entity) -> None:
        # a new entity is transient: its __dict__ is what the INSERT or COPY reads, and
        # there is no history to keep (the values are the clock's and the actor's)
        now = self._clock.now()
        values = entity.__dict__
        values["created_at"] = values["updated_at"] = now
        values["created_by"] = values["updated_by"] = self.actor

    async def _attached(self, entity: Entity, *, attach: bool = True) -> Entity:
        """This unit of work's instance of `entity` (loaded by id if need be), or NotFound.

        `attach`: hand it (and every loaded entity) to the session, for writes that need
        the session (a hard delete); a change to a loaded entity is flushed either way.
        """
        cls = type(entity)
        table_of(cls)
        self.check_write(entity)
        session = self._session_obj
        if (
            session is not None
            and object_session(entity) is session.sync_session
            and not instance_state(entity).deleted
        ):
            return entity
        found = await self.get(cls, entity.id, include_deleted=True)
        if found is None or (instance_state(entity).key is None and found is not entity):
            raise NotFound(cls.__name__, entity.id)
        if found is not entity and found.version != entity.version:
            raise ConcurrencyConflict(cls.__name__, entity.id)  # a stale detached copy
        if attach:
            self._attach_loaded()
        return found

    async def _forget_cascaded(self, obj: Entity) -> None:
        """Drop loaded objects a hard delete removes by ON DELETE CASCADE, and report them."""
        identity = self._session.sync_session.identity_map
        for loaded in list(identity.values()):
            if not isinstance(loaded, Entity) or loaded is obj:
                continue
            if _cascades_from(loaded, obj):
                self.record_change(loaded, ChangeKind.DELETE)
                self._session.expunge(loaded)
        for cls in ENTITY_TYPES:
            for ref in cls.__references__:
                if ref.target is type(obj) and ref.on_delete == "cascade":
                    table = table_of(cls)
                    stmt = select(table.c.id, table.c.organization_id).where(
                        table.c[ref.field] == obj.id,
                        table.c.organization_id == _tenant_of(obj),
                    )
                    for row in (await self._session.execute(stmt)).all():
                        self._changes[(cls, row[0])] = Change(
                            cls, row[0], row[1], ChangeKind.DELETE
                        )

    def _pull_events(self) -> list[DomainEvent]:
        events, self._copied_events = self._copied_events, []
        seen: set[int] = set()
        candidates: list[object] = [
            *self._tracked.values(),
            *self._loaded.values(),
            *self._hard_deleted,
        ]
        if self._session_obj is not None:
            candidates.extend(self._session_obj.sync_session.identity_map.values())
        for obj in candidates:
            if isinstance(obj, Entity) and id(obj) not in seen:
                seen.add(id(obj))
                events.extend(obj.pull_events())
        return events

    async def _reset(self) -> None:
        """Forget everything since the last commit; handed-out objects keep their values."""
        session = self._session_obj
        held: list[object] = [*self._tracked.values(), *self._loaded.values()]
        if session is not None:
            held.extend(session.sync_session.identity_map.values())
        for obj in held:
            if isinstance(obj, Entity) and obj.has_events():
                obj.pull_events()
        self._loaded = weakref.WeakValueDictionary()
        self._callbacks = []
        self._changes = {}
        self._tracked = {}
        self._copied_events = []
        self._hard_deleted = []
        try:
            if session is not None:
                session.expunge_all()
                await session.rollback()
            if self._holder is not None:
                await self._holder.rollback()
        except Exception:
            log.warning("rollback failed; discarding the connection", exc_info=True)
            await self._invalidate()
        inserted, self._inserted = list(self._inserted), weakref.WeakSet()
        for obj in inserted:  # their rows are gone: transient again, as SQLAlchemy does
            state = instance_state(obj)
            if state.session_id is None:
                state.key = None

    async def _invalidate(self) -> None:
        try:
            if self._session_obj is not None:
                await self._session_obj.invalidate()
        except Exception:
            log.debug("invalidating the connection failed", exc_info=True)
        if self._holder is not None:
            await self._holder.invalidate()

    def capture_values(self) -> None:
        """Keep the attribute values of every object in play (called at rollback).

        A failed flush makes SQLAlchemy roll back and expire every instance before the
        error reaches us; handed-out entities must keep their values instead.
        """
        sync = self._session.sync_session
        objects = {id(o): o for o in [*self._tracked.values(), *sync.identity_map.values()]}
        objects.update((id(o), o) for o in sync.new)
        self._captured.extend(
            (obj, {k: v for k, v in obj.__dict__.items() if k != "_sa_instance_state"})
            for obj in objects.values()
            if isinstance(obj, Entity)
        )

    def _restore_values(self) -> None:
        captured, self._captured = self._captured, []
        for obj, values in captured:
            obj.__dict__.update(values)
            state = instance_state(obj)
            state.expired_attributes.difference_update(values)
            state.expired = False

    async def _fail(self, *, disconnect: bool = False) -> None:
        if disconnect:  # never hand a broken connection back to the pool
            await self._invalidate()
        await self._reset()
        self._restore_values()

    async def _read(self, op: Callable[[], Awaitable[T]]) -> T:
        if self._has_pending():
            # Flush through the write path, so a stale or unique error of pending changes is
            # translated like any write (not as a failed read inside autoflush).
            await self._write(self._flush, attach=False)
        self._captured = []
        try:
            return await op()
        except DomainError:
            await self._fail()
            raise
        except Exception as error:
            if not is_driver_error(error):
                raise
            failure = classify(error)
            log.debug("database error during a read", exc_info=True)
            await self._fail(disconnect=failure.disconnect)
            raise to_domain_error(failure) from None

    async def _write(
        self,
        op: Callable[[], Awaitable[Any]],
        *,
        subject: Entity | None = None,
        operation: Literal["write", "delete"] = "write",
        also: Sequence[Entity] = (),
        begin: bool = True,
        attach: bool = True,
    ) -> None:
        self._ensure_open()
        if attach:
            self._attach_loaded()
        session = self._session_obj if not attach else self._session
        pending: list[Entity] = []
        deleting: list[Entity] = []
        if session is not None:
            sync = session.sync_session
            pending = [o for o in [*sync.new, *sync.dirty] if isinstance(o, Entity)]
            deleting = [o for o in sync.deleted if isinstance(o, Entity)]
        if subject is not None:
            (deleting if operation == "delete" else pending).append(subject)
        pending.extend(e for e in also if isinstance(e, Entity))
        pending.extend(o for o in self._loaded.values() if instance_state(o).modified)
        self._captured = []
        try:
            if begin and self._holder is not None:
                await self._driver()  # begin here: a dead pooled connection is replaced
            await op()
        except DomainError:
            await self._fail()
            raise
        except Exception as error:
            if not is_driver_error(error):
                await self._fail()
                raise
            failure = classify(error)
            log.debug("database error during a write", exc_info=True)
            await self._fail(disconnect=failure.disconnect)
            raise await self._explain(failure, subject, pending, deleting) from None

    async def _explain(
        self,
        failure: DbFailure,
        subject: Entity | None,
        pending: list[Entity],
        deleting: list[Entity],
    ) -> DomainError:
        """The domain error for a failed write, naming entity and field where the driver won't."""
        if failure.kind == "stale":
            return self._conflict(failure, [*pending, *deleting], subject)
        if failure.kind == "foreign_key" and not failure.key_values:
            # SQLite never names the key; PostgreSQL hides it from roles under RLS
            missing = await self._missing_reference(pending)
            if missing is not None:
                return missing
        if failure.kind in ("foreign_key", "restrict") and failure.constraint is None:
            if deleting:
                restricted = _restricting_reference(type(deleting[-1]))
                if restricted is not None:
                    return ValidationError(restricted[1], f"still referenced by {restricted[0]}")
            missing = await self._missing_reference(pending)
            if missing is not None:
                return missing
        error = to_domain_error(failure, type(subject) if subject is not None else None)
        if isinstance(error, AlreadyExists) and error.field != "id":
            owner = next((c for c in ENTITY_TYPES if c.__name__ == error.entity), None)
            if owner is not None:
                first = await self._first_violated_key(owner, pending)
                if first is not None:
                    return AlreadyExists(owner.__name__, first)
        return error

    async def _first_violated_key(self, cls: type[Entity], pending: list[Entity]) -> str | None:
        """The first of `cls.__unique__` the written rows violate, as the memory adapter reports.

        Databases check unique indexes row by row in an order of their own (SQLite: newest
        index first); the port reports the first key in declaration order.
        """
        live = list({id(e): e for e in pending if type(e) is cls and e.deleted_at is None}.values())
        if not live:
            return None
        table = table_of(cls)
        ids = [e.id for e in live]
        try:
            for key in cls.__unique__:
                values = [tuple(getattr(e, f) for f in key.fields) for e in live]
                if len(set(values)) < len(values):
                    return key.reported_as
                columns = [table.c[f] for f in key.fields]
                stmt = (
                    select(func.count())
                    .select_from(table)
                    .where(
                        table.c.deleted_at.is_(None),
                        tuple_(*columns).in_(values),
                        table.c.id.not_in(ids),
                    )
                )
                if await self._session.scalar(stmt):
                    return key.reported_as
            return None
        finally:
            await self._reset()

    def _conflict(
        self, failure: DbFailure, candidates: list[Entity], subject: Entity | None
    ) -> ConcurrencyConflict:
        of_table = [c for c in candidates if table_of(type(c)).name == failure.table]
        choices = of_table or candidates or ([subject] if subject is not None else [])
        if not choices:
            return ConcurrencyConflict("entity", None)
        return ConcurrencyConflict(type(choices[-1]).__name__, choices[-1].id)

    async def _missing_reference(self, pending: list[Entity]) -> NotFound | None:
        """SQLite does not name the failed foreign key: look for the missing target."""
        try:
            for obj in reversed(pending):
                for target, value in _references_of(obj):
                    table = table_of(target)
                    stmt = select(func.count()).select_from(table).where(table.c.id == value)
                    if "organization_id" in table.c:
                        stmt = stmt.where(table.c.organization_id == _tenant_of(obj))
                    if not await self._session.scalar(stmt):
                        return NotFound(target.__name__, value)
            return None
        finally:
            await self._reset()


# ---------------------------------------------------------------------- helpers


def _tenant_of(entity: Entity) -> UUID:
    value = getattr(entity, type(entity).__tenant_field__)
    assert isinstance(value, UUID)
    return value


def _moved_tenant(entity: Entity) -> bool:
    """True when a persistent entity's organization_id was changed (never allowed)."""
    state = instance_state(entity)
    if state.key is None or type(entity).__tenant_field__ != "organization_id":
        return False
    return bool(state.attrs.organization_id.history.deleted)


def _changed_id(entity: Entity) -> bool:
    state = instance_state(entity)
    return state.key is not None and bool(state.attrs.id.history.deleted)


_MIRRORED = ("deleted_at", "deleted_by", "updated_at", "updated_by", "version")


def _mirror(obj: Entity, detached: Entity) -> None:
    """Show a soft delete or restore done through `obj` on the caller's detached copy too
    (as the memory adapter, which writes through the caller's object); no history."""
    if detached is not obj:
        for name in _MIRRORED:
            set_committed_value(detached, name, getattr(obj, name))


def _references_of(obj: Entity) -> list[tuple[type[Entity], UUID]]:
    refs: list[tuple[type[Entity], UUID]] = []
    if type(obj).__tenant_field__ == "organization_id":
        refs.append((Organization, _tenant_of(obj)))
    refs.extend((ref.target, getattr(obj, ref.field)) for ref in type(obj).__references__)
    return refs


def _restricting_reference(target: type[Entity]) -> tuple[str, str] | None:
    for cls in ENTITY_TYPES:
        for ref in cls.__references__:
            if ref.target is target and ref.on_delete == "restrict":
                return cls.__name__, ref.field
    return None


def _cascades_from(loaded: Entity, deleted: Entity) -> bool:
    if isinstance(deleted, Organization):
        return _tenant_of(loaded) == deleted.id
    return any(
        ref.target is type(deleted)
        and ref.on_delete == "cascade"
        and getattr(loaded, ref.field) == deleted.id
        and _tenant_of(loaded) == _tenant_of(deleted)
        for ref in type(loaded).__references__
    )


def _bind_args(prepared: Prepared, values: Mapping[str, Any]) -> list[Any]:
    """A statement's arguments; a value the column types cannot convert is bad input."""
    try:
        return prepared.args(values)
    except (TypeError, ValueError, OverflowError) as error:
        raise ValidationError("query", f"a value cannot be sent to the database: {error}") from None


def _row_args(build: Callable[[], tuple[Any, ...]]) -> tuple[Any, ...]:
    try:
        return build()
    except (TypeError, ValueError, OverflowError) as error:
        raise ValidationError("entity", f"a value cannot be stored: {error}") from None


def mark_persistent(entity: Entity, identity: Any) -> None:
    """What `make_transient_to_detached` does for a fully populated new entity, cheaply."""
    state = instance_state(entity)
    state.key = identity
    state._commit_all(entity.__dict__)


def _criteria_list(criteria: ColumnElement[bool] | None) -> list[ColumnElement[bool]]:
    return [] if criteria is None else [criteria]


async def _scalars(session: AsyncSession, stmt: Any) -> Sequence[Any]:
    return (await session.scalars(stmt)).all()


async def _rows(session: AsyncSession, stmt: Any) -> Sequence[Any]:
    return (await session.execute(stmt)).all()


async def _next_or_none(result: Any) -> Any:
    try:
        return await result.__anext__()
    except StopAsyncIteration:
        return None


__all__ = ["SqlUnitOfWork"]
